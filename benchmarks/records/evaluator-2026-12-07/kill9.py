"""The kill -9 check: how many env steps a `--resume` loses after the trainer is SIGKILLed.

Each try trains LunarLander-v3 as a new user would (--workers 2 --solve-score none
--checkpoint-every 20000), sends SIGKILL to the trainer 30 s after it started training
(metrics.csv created; start-up on a loaded machine is not counted), then
resumes the run for a few more steps. Steps lost = the last step the killed run logged
in metrics.csv - the step the resume starts from (printed by --resume). Promise: at most
one --checkpoint-every interval plus the steps of one 0.2 s poll of the trainer's loop.

    python kill9.py --src /path/to/src --tries 5 --out /tmp/kill9 [--label new]

--src is put on PYTHONPATH (this tree's src, or an older tree's for the same check on old code).
Writes OUT/summary.json and, per try, OUT/tryN/{config.json,eval.json} (of the resumed run).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

EVERY = 20_000


def last_logged_step(run: Path) -> int:
    with open(run / "metrics.csv", newline="") as f:
        return max((int(r[1]) for r in csv.reader(f) if r and r[0] in ("episode", "eval") and len(r) == 10),
                   default=0)


def manifest_steps(run: Path) -> list[int]:
    try:
        return [e["step"] for e in json.loads((run / "checkpoints" / "manifest.json").read_text())["checkpoints"]]
    except (OSError, ValueError, KeyError):
        return []


def one_try(src: str, root: Path, i: int, kill_at: float, new_options: bool,
            extra_train: list[str]) -> dict[str, object]:
    run = root / f"run{i}"
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "asyncdqn.cli", "train"]
    proc = subprocess.Popen([*cli, "--env", "LunarLander-v3", "--workers", "2", "--solve-score", "none",
                             "--checkpoint-every", str(EVERY), "--keep-checkpoints", "100", "--no-progress",
                             "--run-dir", str(run), *extra_train], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    # The clock starts when the trainer opens metrics.csv (its training clock starts then too): on
    # this shared, loaded machine the interpreter and torch start-up alone can take 30 s.
    while not (run / "metrics.csv").exists():
        if proc.poll() is not None:
            raise SystemExit(f"the trainer exited ({proc.returncode}) before training: {proc.stderr.read()}")
        time.sleep(0.1)
    time.sleep(kill_at)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_err = proc.stderr.read() if proc.stderr else ""
    last = last_logged_step(run)
    steps = manifest_steps(run)
    evals = 0
    with open(run / "metrics.csv", newline="") as f:
        evals = sum(1 for r in csv.reader(f) if r and r[0] == "eval")
    extra = ["--eval-episodes", "5"] + (["--final-eval-seconds", "10"] if new_options else [])
    r = subprocess.run([*cli, "--resume", str(run), "--max-steps", str((steps[-1] if steps else 0) + 2000),
                        "--no-progress", *extra], env=env, capture_output=True, text=True, timeout=600)
    m = re.search(r"\(step ([\d,]+), resume #", r.stderr)
    resumed_from = int(m.group(1).replace(",", "")) if m else None
    out = root / f"try{i}"
    out.mkdir(exist_ok=True)
    for name in ("config.json", "eval.json"):
        if (run / name).exists():
            shutil.copy(run / name, out / name)
    gaps = [b - a for a, b in zip([0, *steps], steps, strict=False)]
    return {"try": i, "killed_at_s": kill_at, "last_logged_step": last, "checkpoints": steps,
            "max_checkpoint_gap": max(gaps) if gaps else None, "eval_rows_before_kill": evals,
            "resumed_from_step": resumed_from, "steps_lost": None if resumed_from is None else last - resumed_from,
            "resume_exit": r.returncode, "killed_stderr_tail": killed_err[-300:],
            "resume_stderr_tail": r.stderr[-300:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True)
    ap.add_argument("--tries", type=int, default=5)
    ap.add_argument("--kill-at", type=float, default=30.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--label", default="new")
    ap.add_argument("--old", action="store_true", help="the tree predates --final-eval-seconds")
    ap.add_argument("--extra", default="", help="more train options, e.g. '--eval-every-steps 20000'")
    a = ap.parse_args()
    root = Path(a.out)
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for i in range(1, a.tries + 1):
        res = one_try(a.src, root, i, a.kill_at, not a.old, a.extra.split())
        print(json.dumps({k: res[k] for k in ("try", "last_logged_step", "resumed_from_step", "steps_lost",
                                               "max_checkpoint_gap", "eval_rows_before_kill")}), flush=True)
        results.append(res)
    lost = [r["steps_lost"] for r in results]
    summary = {"label": a.label, "src": a.src, "extra_train_options": a.extra, "kill_at_s": a.kill_at,
               "tries": results, "steps_lost": lost,
               "within_interval": sum(1 for x in lost if x is not None and x <= EVERY),
               "within_interval_plus_5000": sum(1 for x in lost if x is not None and x <= EVERY + 5000),
               "promise": f"<= {EVERY} + one 0.2 s poll (~4,000 steps at 2 workers' ~20k steps/s)"}
    (root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
