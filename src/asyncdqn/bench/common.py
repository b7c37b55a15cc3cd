"""What the multi-run benchmarks (`bench solve`, `bench presets`) share: a finished run's greedy
evaluations, the record of a run that failed, a fresh re-evaluation of the policy a run returns,
peak memory, the machine, and the median they report."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asyncdqn.rundir.layout import BEST, CHECKPOINTS, CONFIG, EVAL

# Evaluation round of the closing re-evaluation: its episode seeds differ from every check's.
REEVAL_ROUND = 10**6


def peak_rss_mb() -> dict[str, float]:
    """Peak resident set size of this process and of its largest child (Linux: ru_maxrss in KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"main_mb": round(own, 1), "largest_worker_mb": round(child, 1)}


def eval_history(run_dir: Path) -> list[dict[str, float]]:
    """Every greedy evaluation a run made: wall time, env steps, mean and std of its returns."""
    from asyncdqn.report.plotting import read_run

    c = read_run(run_dir)
    return [{"wall_s": float(t), "steps": int(s), "mean": float(m), "std": float(sd)}
            for t, s, m, sd in zip(c.eval_time, c.eval_step, c.eval_mean, c.eval_std, strict=True)]


def failed_record(run_dir: Path, episodes: int, seed: int, exc: Exception) -> dict[str, Any]:
    """The record of a run that ended in a TrainingError (e.g. diverged): an unsolved run, with its
    best checkpoint re-evaluated on `episodes` fresh episodes when it wrote one."""
    report = json.loads((run_dir / EVAL).read_text())
    best = run_dir / CHECKPOINTS / BEST
    nan = {"mean": float("nan"), "std": float("nan"), "episodes": 0, "policy": "none"}
    return {
        "solved": False, "time_to_solve_s": None, "steps_to_solve": None, "failed": str(exc),
        "wall_time_s": report["wall_time_s"], "total_steps": report["total_steps"],
        "steps_per_second": report["steps_per_second"],
        "final_eval": reevaluate_best(run_dir, episodes, seed) if best.exists() else nan,
        "evals": eval_history(run_dir), "workers": json.loads((run_dir / CONFIG).read_text())["workers"],
    }


def reevaluate_best(run_dir: Path, episodes: int, seed: int) -> dict[str, Any]:
    """A fresh greedy evaluation of the policy asyncdqn hands its user: the best checkpoint
    (the solving snapshot, when solved), which `evaluate` and `render` load by default."""
    from asyncdqn.policy import load_policy

    r = load_policy(run_dir, "best").evaluate(episodes, seed, REEVAL_ROUND)
    return {"mean": r.mean, "std": r.std, "episodes": r.episodes, "policy": "best checkpoint"}


def median(xs: Sequence[float]) -> float:
    """The median, NaN for no values."""
    return float(statistics.median(xs)) if xs else float("nan")


def machine_info() -> dict[str, Any]:
    import torch

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_count": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform()}
