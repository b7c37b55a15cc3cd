"""1M-step probes of PQN's options on MinAtar Breakout (the protocol of
benchmarks/records/minatar-2026-12-01/probes.md): `asyncdqn train --env MinAtar/Breakout-v1` with the
preset, 2 workers, a 20-episode greedy evaluation every 100k steps, 1M steps.
Usage: OMP_NUM_THREADS=1 python minatar.py OUT_ROOT SEEDS VARIANT [VARIANT ...]
Each run leaves OUT_ROOT/minatar-<variant>/seed<S>.json (every evaluation) and the run's config.json and
eval.json; its metrics and checkpoints are deleted. ASYNCDQN names the command (default: asyncdqn).
"""
import csv, json, os, shlex, shutil, subprocess, sys, time
from pathlib import Path

ASYNCDQN = shlex.split(os.environ.get("ASYNCDQN", "asyncdqn"))
BASE = ["--env", "MinAtar/Breakout-v1", "--workers", "2", "--max-steps", "1000000", "--eval-every-steps", "100000",
        "--eval-episodes", "20", "--screen-episodes", "20", "--no-progress"]
VARIANTS = {
    "base": [],
    "lambda": ["--returns", "lambda"],
    "notarget": ["--target-update-steps", "0"],
    "lambda-notarget": ["--returns", "lambda", "--target-update-steps", "0"],
}


def main():
    out, seeds, names = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")], sys.argv[3:]
    for seed in seeds:
        for name in names:
            res = out / f"minatar-{name}" / f"seed{seed}.json"
            if res.exists():
                continue
            run = out / f"minatar-{name}" / f"run-seed{seed}"
            t0 = time.time()
            cmd = [*ASYNCDQN, "train", *BASE, *VARIANTS[name], "--seed", str(seed), "--run-dir", str(run)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            evals = ([r for r in csv.DictReader(open(run / "metrics.csv")) if r["kind"] == "eval"]
                     if (run / "metrics.csv").exists() else [])
            final = json.loads((run / "eval.json").read_text()) if (run / "eval.json").exists() else {}
            rec = {"variant": f"minatar-{name}", "args": VARIANTS[name], "seed": seed, "rc": p.returncode,
                   "elapsed": time.time() - t0,
                   "evals": [(int(r["step"]), float(r["eval_mean"]), int(r["eval_episodes"])) for r in evals],
                   "final_eval_mean": (final.get("final_eval") or {}).get("mean"), "stderr_tail": p.stderr[-400:]}
            res.parent.mkdir(parents=True, exist_ok=True)
            res.write_text(json.dumps(rec, indent=1))
            keep = res.parent / f"seed{seed}"
            keep.mkdir(exist_ok=True)
            for f in ("config.json", "eval.json"):
                if (run / f).exists():
                    shutil.copy(run / f, keep / f)
            shutil.rmtree(run)
            print(f"minatar-{name}", seed, [e[1] for e in rec["evals"]], round(time.time() - t0, 1), flush=True)


if __name__ == "__main__":
    main()
