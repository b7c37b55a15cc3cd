"""Every preset verified: `asyncdqn bench presets`.

For each (environment, algorithm) row, train with exactly what `asyncdqn train --env E
--algo A` resolves to (the preset's solve score, evaluation cadence and budget) over
several seeds, each run in its own subprocess, then judge the policy the run hands
its user (`load_policy(run_dir, "best")`) on fresh episodes. A row keeps its promise
when every seed solves: the preset's greedy evaluation over 100 fresh episodes reaches
its solve score within its budget.

Output in --out: one JSON per run (`<env>-<algo>-seed<S>.json`, its run directory
beside it), summary.json and summary.md (the table). Runs whose JSON exists are not
repeated, so an interrupted benchmark resumes where it stopped.

The machinery (re-evaluation of the returned policy, failed-run records, machine
info) is bench.common's; only the row loop and the table are here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from asyncdqn.bench.common import eval_history, failed_record, machine_info, median, peak_rss_mb, reevaluate_best
from asyncdqn.errors import AsyncDQNError, TrainingError
from asyncdqn.rundir.fileio import atomic_write_json

ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3")  # cheapest first
DEFAULT_ALGOS = ("n-step-q", "dqn")
REEVAL_EPISODES = 100  # fresh episodes the policy a run returns is replayed on

# RL-Baselines3-Zoo's published scores of its trained agents: "Performance of trained agents",
# https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/benchmark.md (commit 0088472b): mean ± std of
# the deterministic policy over `eval_episodes`, one training run of `n_timesteps` each. DQN is the
# replay baseline's counterpart; A2C, the synchronous version of the asynchronous actor-critic of
# the same paper (Mnih et al. 2016), is the nearest published relative of the async Q-learners.
# The zoo's LunarLander is v2 (same dynamics as v3).
RL_ZOO: dict[tuple[str, str], dict[str, Any]] = {
    ("CartPole-v1", "dqn"): {"mean": 500.0, "std": 0.0, "n_timesteps": 50_000},
    ("Acrobot-v1", "dqn"): {"mean": -76.639, "std": 11.752, "n_timesteps": 100_000},
    ("MountainCar-v0", "dqn"): {"mean": -100.849, "std": 9.925, "n_timesteps": 120_000},
    ("LunarLander-v3", "dqn"): {"mean": 154.382, "std": 79.241, "n_timesteps": 100_000},
    ("CartPole-v1", "a2c"): {"mean": 500.0, "std": 0.0, "n_timesteps": 500_000},
    ("Acrobot-v1", "a2c"): {"mean": -83.353, "std": 17.213, "n_timesteps": 500_000},
    ("MountainCar-v0", "a2c"): {"mean": -111.263, "std": 24.087, "n_timesteps": 1_000_000},
    ("LunarLander-v3", "a2c"): {"mean": 155.751, "std": 80.419, "n_timesteps": 200_000},
}
RL_ZOO_SOURCE = "DLR-RM/rl-baselines3-zoo benchmark.md (commit 0088472b), one run per algorithm and env"


def zoo_reference(env_id: str, algo: str) -> tuple[str, dict[str, Any]] | None:
    """RL-Zoo's figure for a row: DQN for dqn, A2C for the asynchronous algorithms."""
    zoo_algo = "dqn" if algo == "dqn" else "a2c"
    ref = RL_ZOO.get((env_id, zoo_algo))
    return (zoo_algo, ref) if ref is not None else None


def row_options(env_id: str, algo: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """What `asyncdqn train --env E --algo A [--set ...]` resolves to, as a dict."""
    from asyncdqn.config import resolve_config

    return resolve_config({"env_id": env_id, "algo": algo, **(overrides or {})}).to_dict()


def row_name(env_id: str, algo: str) -> str:
    return f"{env_id}-{algo}"


# ------------------------------------------------------------------ one run
def run_one(env_id: str, algo: str, seed: int, out_dir: Path, budget_scale: float = 1.0,
            overrides: dict[str, Any] | None = None, reeval_episodes: int = REEVAL_EPISODES) -> dict[str, Any]:
    """Train one seed of a row in this process; returns its record (the JSON written by the driver)."""
    from asyncdqn.trainer import train

    opts = row_options(env_id, algo, overrides)
    if opts["max_seconds"] is not None:
        opts["max_seconds"] = opts["max_seconds"] * budget_scale
    run_dir = out_dir / f"{row_name(env_id, algo)}-seed{seed}"
    opts.update(seed=seed, run_dir=str(run_dir), progress=False, label=f"{row_name(env_id, algo)} seed {seed}")
    base = {"env_id": env_id, "algo": algo, "seed": seed, "run_dir": str(run_dir), "overrides": overrides or {},
            "solve_score": opts["solve_score"], "budget_s": opts["max_seconds"], "max_steps": opts["max_steps"],
            "budget_scale": budget_scale}
    try:
        result = train(opts)
    except TrainingError as exc:  # a failed run (e.g. diverged) is an unsolved run, not a broken benchmark
        return {**base, **failed_record(run_dir, reeval_episodes, seed, exc), "peak_rss": peak_rss_mb()}
    return {
        **base, "solved": result.solved, "time_to_solve_s": result.time_to_solve_s,
        "steps_to_solve": result.steps_to_solve, "wall_time_s": result.wall_time_s,
        "total_steps": result.total_steps, "steps_per_second": result.steps_per_second,
        "stop_reason": result.stop_reason,
        "final_eval": reevaluate_best(run_dir, reeval_episodes, seed),  # the returned policy on fresh episodes
        "final_weights_eval": {k: result.final_eval[k] for k in ("mean", "std", "episodes")},
        "evals": eval_history(run_dir), "workers": json.loads((run_dir / "config.json").read_text())["workers"],
        "peak_rss": peak_rss_mb(),
    }


# ------------------------------------------------------------------ summary
def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per row, in the order the rows first appear. Unsolved runs count as their budget."""
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        rows.setdefault((r["env_id"], r["algo"]), []).append(r)
    out = []
    for (env_id, algo), rs in rows.items():
        rs.sort(key=lambda r: r["seed"])
        budget = rs[0]["budget_s"]
        times = [r["time_to_solve_s"] if r["solved"] else (budget or r["wall_time_s"]) for r in rs]
        steps = [r["steps_to_solve"] if r["solved"] else r["total_steps"] for r in rs]
        returned = [r["final_eval"]["mean"] for r in rs]
        finite = [x for x in returned if np.isfinite(x)]
        out.append({
            "env_id": env_id, "algo": algo, "solve_score": rs[0]["solve_score"], "budget_s": budget,
            "max_steps": rs[0]["max_steps"], "runs": len(rs), "solved": sum(bool(r["solved"]) for r in rs),
            "seeds": [r["seed"] for r in rs],
            "time_s": {"median": median(times), "each": times},
            "steps": {"median": median(steps), "each": steps},
            "returned_policy": {"median": median(finite), "min": min(finite) if finite else float("nan"),
                                "each": returned,
                                "reaches_score": sum(x >= rs[0]["solve_score"] for x in finite)},
            "rl_zoo": zoo_reference(env_id, algo),
            "overrides": rs[0].get("overrides") or {},
        })
    return out


def format_table(summary: list[dict[str, Any]], reeval_episodes: int = REEVAL_EPISODES) -> str:
    lines = [
        "| env | algo | solve score | budget | solved | median time to solve (s) | median env steps to solve "
        f"| returned policy, {reeval_episodes} fresh episodes: median (min) over seeds "
        "| RL-Zoo (algo, steps): mean ± std |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        budget = f"{s['budget_s']:g} s" if s["budget_s"] else "—"
        if s["max_steps"]:
            budget += f" / {s['max_steps']:,} steps"
        ref = s["rl_zoo"]
        zoo = f"{ref[1]['mean']:.1f} ± {ref[1]['std']:.1f} ({ref[0]}, {ref[1]['n_timesteps']:,})" if ref else "—"
        rp = s["returned_policy"]
        lines.append(
            f"| {s['env_id']} | {s['algo']} | {s['solve_score']:g} | {budget} | {s['solved']}/{s['runs']} "
            f"| {s['time_s']['median']:.1f} | {s['steps']['median']:,.0f} | {rp['median']:.1f} ({rp['min']:.1f}) "
            f"| {zoo} |")
    lines += ["", "Unsolved runs count as the budget in the medians. Returned policy: the run's best checkpoint "
              "(`load_policy(run_dir)`), replayed greedily on fresh episodes (seeds no check used). "
              f"RL-Zoo: {RL_ZOO_SOURCE}."]
    return "\n".join(lines)


# ------------------------------------------------------------------- driver
def plan(envs: Sequence[str], algos: Sequence[str], overrides: dict[str, Any] | None = None,
         ) -> tuple[list[tuple[str, str]], list[str]]:
    """(rows to run, notes on rows skipped because their preset promises no solve score)."""
    rows, skipped = [], []
    for env_id in envs:
        for algo in algos:
            opts = row_options(env_id, algo, overrides)  # ConfigError for an unknown algo or bad --set
            if opts["solve_score"] is None:
                skipped.append(f"{row_name(env_id, algo)}: the preset promises no solve score; not benchmarked")
            else:
                rows.append((env_id, algo))
    return rows, skipped


def run_presets(out_dir: Path, envs: Sequence[str] = ENVS, algos: Sequence[str] = DEFAULT_ALGOS,
                seeds: Sequence[int] = range(5), budget_scale: float = 1.0, overrides: dict[str, Any] | None = None,
                reeval_episodes: int = REEVAL_EPISODES, log: Callable[[str], None] = print, parallel: int = 1,
                run: bool = True) -> dict[str, Any]:
    """Run every (row, seed) missing from `out_dir` as a subprocess (row by row, `parallel` at a time:
    their timings then share the cores), then summarize."""
    rows, skipped = plan(envs, algos, overrides)
    for note in skipped:
        log(note)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [(env_id, algo, seed) for env_id, algo in rows for seed in seeds
            if run and not (out_dir / f"{row_name(env_id, algo)}-seed{seed}.json").exists()]
    for i in range(0, len(todo), max(1, parallel)):  # row by row, `parallel` runs at a time
        batch = [_start_child(e, a, s, out_dir, budget_scale, overrides or {}, reeval_episodes, log)
                 for e, a, s in todo[i:i + max(1, parallel)]]
        for job in batch:
            _finish_child(*job, out_dir, log)
    records = [json.loads(p.read_text()) for env_id, algo in rows for s in seeds
               if (p := out_dir / f"{row_name(env_id, algo)}-seed{s}.json").exists()]
    summary = summarize(records)
    table = format_table(summary, reeval_episodes)
    report = {"summary": summary, "skipped": skipped, "machine": machine_info(), "budget_scale": budget_scale,
              "parallel": parallel,
              "overrides": overrides or {}, "seeds": list(seeds), "command": " ".join(sys.argv),
              "rl_zoo_source": RL_ZOO_SOURCE}
    atomic_write_json(out_dir / "summary.json", report)
    (out_dir / "summary.md").write_text(table + "\n")
    return {"report": report, "table": table, "records": records}


def _start_child(env_id: str, algo: str, seed: int, out_dir: Path, budget_scale: float, overrides: dict[str, Any],
                 reeval_episodes: int, log: Callable[[str], None]) -> tuple[str, str, int, subprocess.Popen[str]]:
    log(f"running {row_name(env_id, algo)} seed {seed} ...")
    run_dir = out_dir / f"{row_name(env_id, algo)}-seed{seed}"
    if run_dir.exists():  # an interrupted earlier attempt: kept aside, never deleted
        n = 1
        while (aside := run_dir.with_name(f"{run_dir.name}.interrupted-{n}")).exists():
            n += 1
        run_dir.rename(aside)
        log(f"  an unfinished run directory of this seed was moved to {aside.name}")
    cmd = [sys.executable, "-m", "asyncdqn.bench.preset_check", "--env", env_id, "--algo", algo, "--seed", str(seed),
           "--out-dir", str(out_dir), "--budget-scale", repr(budget_scale), "--overrides", json.dumps(overrides),
           "--reeval-episodes", str(reeval_episodes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    return env_id, algo, seed, proc


def _finish_child(env_id: str, algo: str, seed: int, proc: subprocess.Popen[str], out_dir: Path,
                  log: Callable[[str], None]) -> None:
    _, err = proc.communicate()
    path = out_dir / f"{row_name(env_id, algo)}-seed{seed}.json"
    if proc.returncode != 0 or not path.exists():
        tail = " | ".join(err.strip().splitlines()[-3:])
        raise AsyncDQNError(f"bench presets: {row_name(env_id, algo)} seed {seed} failed (exit {proc.returncode}): "
                            f"{tail}")
    r = json.loads(path.read_text())
    what = (f"solved in {r['time_to_solve_s']:.1f} s / {r['steps_to_solve']:,} steps" if r["solved"]
            else f"NOT solved ({r.get('stop_reason', 'failed')}, {r['wall_time_s']:.0f} s, {r['total_steps']:,} steps)")
    log(f"  {row_name(env_id, algo)} seed {seed}: {what}; returned policy {r['final_eval']['mean']:.1f} "
        f"± {r['final_eval']['std']:.1f}")


def _child_main(argv: list[str] | None = None) -> int:
    """`python -m asyncdqn.bench.preset_check --env E --algo A --seed S --out-dir D` (one run)."""
    ap = argparse.ArgumentParser(prog="python -m asyncdqn.bench.preset_check")
    ap.add_argument("--env", required=True)
    ap.add_argument("--algo", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--budget-scale", type=float, default=1.0)
    ap.add_argument("--overrides", default="{}")
    ap.add_argument("--reeval-episodes", type=int, default=REEVAL_EPISODES)
    a = ap.parse_args(argv)
    out_dir = Path(a.out_dir)
    record = run_one(a.env, a.algo, a.seed, out_dir, a.budget_scale, json.loads(a.overrides), a.reeval_episodes)
    atomic_write_json(out_dir / f"{row_name(a.env, a.algo)}-seed{a.seed}.json", record)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
