"""Step-based preset search for LunarLander-v3 n-step-q on EnvPool.

Each run: `asyncdqn train` with a full greedy evaluation (10-episode screen first) every
100k global env steps, stopping at the first evaluation with mean >= 200 or at 2.5M steps.
The objective is env steps to solve, which machine load does not change (timing does).
Usage: OMP_NUM_THREADS=1 python search.py OUT_ROOT SEEDS VARIANT [VARIANT ...], e.g.
    python search.py out 20,21,22 base double-lr2e-3-avg30k
Variants are keys of VARIANTS and of extra.json (read at start). Runs whose JSON exists are skipped.
"""
import csv, json, os, subprocess, sys, time
from pathlib import Path

ASYNCDQN = os.environ.get("ASYNCDQN", "asyncdqn")  # the sessions ran a clean clone's venv at d9e15e4
BASE = ["--env", "LunarLander-v3", "--algo", "n-step-q", "--vector", "envpool", "--workers", "2",
        "--eval-every-steps", "100000", "--no-eval-trigger", "--solve-score", "200",
        "--max-steps", "2500000", "--no-progress"]
VARIANTS = {
    "base": [],
    "k4": ["--envs-per-worker", "4"],
    "avg100k": ["--average-steps", "100000"],
    "avg30k": ["--average-steps", "30000"],
    "double": ["--double-q"],
    "eps50k": ["--eps-anneal-steps", "50000"],
    "tgt8k": ["--target-update-steps", "8000"],
    "tgt2k": ["--target-update-steps", "2000"],
    "tmax3": ["--t-max", "3"],
    "tmax10": ["--t-max", "10"],
    "h256": ["--hidden-sizes", "256", "256"],
    "lr2e-3": ["--lr", "2e-3"],
    "k4-lr5e-4": ["--envs-per-worker", "4", "--lr", "5e-4"],
    "mse": ["--loss", "mse"],
    "gamma99": ["--gamma", "0.99"],
    "clip10": ["--grad-clip", "10"],
}
VARIANTS.update({k: v for k, v in json.loads(Path(__file__).with_name("extra.json").read_text()).items()}
                if Path(__file__).with_name("extra.json").exists() else {})

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
            cmd = [ASYNCDQN, "train", *BASE, *VARIANTS[name], "--seed", str(seed), "--run-dir", str(run)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            steps, wall, evals = steps_to_solve(run) if (run / "metrics.csv").exists() else (None, None, [])
            rec = {"variant": name, "args": VARIANTS[name], "seed": seed, "rc": p.returncode,
                   "steps_to_solve": steps, "wall_at_solve": wall, "elapsed": time.time() - t0,
                   "evals": [(int(r["step"]), float(r["eval_mean"]), int(r["eval_episodes"])) for r in evals],
                   "stderr_tail": p.stderr[-400:]}
            res.parent.mkdir(parents=True, exist_ok=True)
            res.write_text(json.dumps(rec, indent=1))
            for f in (run / "checkpoints").glob("*"):
                f.unlink()
            print(name, seed, steps, round(time.time() - t0, 1), flush=True)

if __name__ == "__main__":
    main()
