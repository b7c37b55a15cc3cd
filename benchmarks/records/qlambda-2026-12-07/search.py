"""Which of PQN's options help n-step-q on LunarLander-v3, in env steps to solve.

The protocol of benchmarks/records/preset-search-2026-12-02/search.py: `asyncdqn train` on the
LunarLander-v3 preset (EnvPool, 2 workers), a greedy evaluation every 100k global env steps (a
10-episode screen, then 100 episodes if the screen reaches 200), stop at the first 100-episode mean
>= 200 or at 2.5M steps. Env steps to solve do not depend on the machine's load; seconds do.
Usage: OMP_NUM_THREADS=1 python search.py OUT_ROOT SEEDS VARIANT [VARIANT ...], e.g.
    python search.py /tmp/qlambda 20,21,22 base lambda
Each run leaves OUT_ROOT/<variant>/seed<S>.json (options, steps to solve, every evaluation) and the
run's config.json and eval.json; its metrics and checkpoints are deleted. Runs whose JSON exists are
skipped. ASYNCDQN names the command (default: asyncdqn).
"""
import csv, json, os, shlex, shutil, subprocess, sys, time
from pathlib import Path

ASYNCDQN = shlex.split(os.environ.get("ASYNCDQN", "asyncdqn"))
BASE = ["--env", "LunarLander-v3", "--algo", "n-step-q", "--vector", "envpool", "--workers", "2",
        "--eval-every-steps", "100000", "--no-eval-trigger", "--solve-score", "200",
        "--max-steps", "2500000", "--max-seconds", "900", "--no-progress"]
VARIANTS = {
    "base": [],
    "lambda": ["--returns", "lambda"],
    "lambda-tmax10": ["--returns", "lambda", "--t-max", "10"],
    "notarget": ["--target-update-steps", "0"],
    "lambda-notarget": ["--returns", "lambda", "--target-update-steps", "0"],
    "epochs2": ["--epochs", "2"],
    "epochs2-mb2": ["--epochs", "2", "--minibatches", "2"],
    "radam": ["--optimizer", "radam"],
    "notarget-epochs2-mb2": ["--target-update-steps", "0", "--epochs", "2", "--minibatches", "2"],
}


def steps_to_solve(run: Path):
    evals = [r for r in csv.DictReader(open(run / "metrics.csv")) if r["kind"] == "eval"]
    for r in evals:
        if int(r["eval_episodes"]) >= 100 and float(r["eval_mean"]) >= 200:
            return int(r["step"]), float(r["wall_time"]), evals
    return None, None, evals


def main():
    out, seeds, names = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")], sys.argv[3:]
    for seed in seeds:
        for name in names:
            res = out / name / f"seed{seed}.json"
            if res.exists():
                continue
            run = out / name / f"run-seed{seed}"
            t0 = time.time()
            cmd = [*ASYNCDQN, "train", *BASE, *VARIANTS[name], "--seed", str(seed), "--run-dir", str(run)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            steps, wall, evals = steps_to_solve(run) if (run / "metrics.csv").exists() else (None, None, [])
            rec = {"variant": name, "args": VARIANTS[name], "seed": seed, "rc": p.returncode,
                   "steps_to_solve": steps, "wall_at_solve": wall, "elapsed": time.time() - t0,
                   "evals": [(int(r["step"]), float(r["eval_mean"]), int(r["eval_episodes"])) for r in evals],
                   "stderr_tail": p.stderr[-400:]}
            res.parent.mkdir(parents=True, exist_ok=True)
            res.write_text(json.dumps(rec, indent=1))
            keep = out / name / f"seed{seed}"
            keep.mkdir(exist_ok=True)
            for f in ("config.json", "eval.json"):
                if (run / f).exists():
                    shutil.copy(run / f, keep / f)
            shutil.rmtree(run)
            print(name, seed, steps, round(time.time() - t0, 1), flush=True)


if __name__ == "__main__":
    main()
