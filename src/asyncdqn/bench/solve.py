"""Time-to-solve benchmark: asyncdqn against the notebook's settings and Stable-Baselines3 DQN.

Every contender is judged by the same protocol, on the same machine:

* the same solve criterion: greedy mean return >= score over `eval_episodes` fresh
  episodes, played by `evaluate.evaluate` (same seeds, same rounds);
* the same cadence: a check every `check_every_s` seconds of wall time (measured
  from the end of the previous check): a screen of `screen_episodes` greedy
  episodes, then the full evaluation only if the screen reaches the score;
* the same wall-clock budget; a run that has not solved by then counts as the
  budget in the medians.

Wall time starts before the model is built (it includes process spawn for the
asynchronous contenders) and stops at the end of the solving evaluation.

Contenders:
  asyncdqn     this package's default preset for the environment;
  asyncdqn-envpool / asyncdqn-ray  the same preset stepping EnvPool's envs / on the
               ray backend (named explicitly: it is a backend comparison);
  asyncdqn-ray-cluster  the ray backend joining a Ray cluster that is already up (a
               one-node cluster on this machine, started before the run's clock and
               stopped after it: what a team with a running cluster pays per run);
  seed-compat  the seed notebook's algorithm and settings (`--preset seed-compat`);
  sb3-dqn      Stable-Baselines3 DQN with RL-Baselines3-Zoo's tuned LunarLander
               hyper-parameters (needs the `bench` extra).

Each run is a subprocess writing `<contender>-seed<S>.json`; runs whose file
exists are not repeated, so an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asyncdqn.bench.common import (
    REEVAL_ROUND,
    eval_history,
    failed_record,
    machine_info,
    median,
    peak_rss_mb,
    reevaluate_best,
)
from asyncdqn.errors import AsyncDQNError, TrainingError
from asyncdqn.rundir.fileio import atomic_write_json
from asyncdqn.rundir.layout import CONFIG

CONTENDERS = ("asyncdqn", "asyncdqn-envpool", "asyncdqn-ray", "asyncdqn-ray-cluster", "seed-compat", "sb3-dqn")
# Our contenders: the default preset stepping Gymnasium envs, the same preset stepping
# EnvPool's (--vector envpool; evaluation stays on Gymnasium), and the same preset on the
# ray backend (a private Ray started by the run, or a running one-node cluster: one node
# group: the backends' learning-speed comparison). --set overrides apply to all of them.
OURS = ("asyncdqn", "asyncdqn-envpool", "asyncdqn-ray", "asyncdqn-ray-cluster")
RAY_CONTENDERS = ("asyncdqn-ray", "asyncdqn-ray-cluster")


def default_contenders() -> tuple[str, ...]:
    """The contenders run when none are named: all but the ray ones (a backend comparison, asked for
    by name), and asyncdqn-envpool only with the envpool extra installed."""
    from asyncdqn.bench.throughput import available_vectors

    return tuple(c for c in CONTENDERS
                 if c not in RAY_CONTENDERS and (c != "asyncdqn-envpool" or "envpool" in available_vectors()))

# RL-Baselines3-Zoo, hyperparams/dqn.yml, "LunarLander-v2" (tuned; the v3 env has the
# same dynamics). Its n_timesteps is 1e5 and exploration_fraction 0.12 of that, i.e.
# epsilon anneals 1.0 -> 0.1 over the first 12,000 steps; we keep that schedule and let
# the wall-clock budget, not n_timesteps, end the run.
RL_ZOO_LUNARLANDER: dict[str, Any] = {
    "learning_rate": 6.3e-4,
    "batch_size": 128,
    "buffer_size": 50_000,
    "learning_starts": 0,
    "gamma": 0.99,
    "target_update_interval": 250,
    "train_freq": 4,
    "gradient_steps": -1,
    "exploration_final_eps": 0.1,
    "policy_kwargs": {"net_arch": [256, 256]},
}
RL_ZOO_EXPLORATION_STEPS = 12_000  # 0.12 x n_timesteps (1e5)

@dataclass(frozen=True)
class Protocol:
    env_id: str = "LunarLander-v3"
    solve_score: float = 200.0
    eval_episodes: int = 100
    screen_episodes: int = 10
    check_every_s: float = 10.0
    budget_s: float = 600.0


# ----------------------------------------------------------------- contenders
def _run_asyncdqn(contender: str, seed: int, p: Protocol, run_dir: Path,
                  overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    from asyncdqn.trainer import train

    options: dict[str, Any] = {
        **(overrides or {}),
        "env_id": p.env_id, "seed": seed, "solve_score": p.solve_score,
        "eval_episodes": p.eval_episodes, "screen_episodes": p.screen_episodes,
        "eval_every_steps": None, "eval_every_seconds": p.check_every_s, "eval_trigger": False,
        "max_steps": None, "max_seconds": p.budget_s, "progress": False, "run_dir": str(run_dir),
        "label": f"{contender} seed {seed}",
    }
    if contender == "asyncdqn-envpool":
        options["vector"] = "envpool"
    if contender in RAY_CONTENDERS:
        options["backend"] = "ray"
    if contender == "asyncdqn-ray-cluster":
        options["ray_address"] = os.environ["ASYNCDQN_BENCH_RAY_ADDRESS"]  # set by _run_batch
    if contender == "seed-compat":
        # the notebook as it was: no runaway-divergence stop (it would end some of its runs early)
        options.update(preset="seed-compat", runaway_check=False)
    try:
        result = train(options)
    except TrainingError as exc:  # a failed run (e.g. diverged) is an unsolved run, not a broken benchmark
        return failed_record(run_dir, p.eval_episodes, seed, exc)
    returned = reevaluate_best(run_dir, p.eval_episodes, seed)
    evals = eval_history(run_dir)
    return {
        "solved": result.solved, "time_to_solve_s": result.time_to_solve_s,
        "steps_to_solve": result.steps_to_solve, "wall_time_s": result.wall_time_s,
        "total_steps": result.total_steps, "steps_per_second": result.steps_per_second,
        "final_eval": returned,
        "final_weights_eval": {k: result.final_eval[k] for k in ("mean", "std", "episodes")},
        "evals": evals, "workers": json.loads((run_dir / CONFIG).read_text())["workers"],
    }


def _run_sb3(seed: int, p: Protocol, run_dir: Path) -> dict[str, Any]:
    try:
        import torch
        from stable_baselines3 import DQN
        from stable_baselines3.common.callbacks import BaseCallback
    except ImportError as exc:
        raise AsyncDQNError(
            f"sb3-dqn needs Stable-Baselines3 ({exc}); install the bench extra: pip install 'asyncdqn[bench]'"
        ) from None

    from asyncdqn.envs import make_env
    from asyncdqn.evaluate import evaluate

    # All cores when it runs alone (2 torch threads beat 1 by ~15 % here); one per run side by side.
    torch.set_num_threads(int(os.environ.get("ASYNCDQN_SB3_THREADS", str(os.cpu_count() or 1))))
    t0 = time.monotonic()  # like asyncdqn's clock: after imports, before the model is built
    total = 10**9  # effectively unbounded: the wall-clock budget ends the run
    hp = dict(RL_ZOO_LUNARLANDER)
    model = DQN("MlpPolicy", make_env(p.env_id), seed=seed, device="cpu", verbose=0,
                exploration_fraction=RL_ZOO_EXPLORATION_STEPS / total, **hp)
    q_net = model.q_net

    def q(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out: np.ndarray = q_net(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            return out

    state: dict[str, Any] = {"evals": [], "round": 0, "solved": None}

    def check(steps: int) -> bool:
        """One check of the protocol; True when solved."""
        for episodes in (p.screen_episodes, p.eval_episodes):
            state["round"] += 1
            r = evaluate(q, p.env_id, episodes, seed, state["round"])
            wall = time.monotonic() - t0
            state["evals"].append({"wall_s": wall, "steps": steps, "mean": r.mean, "std": r.std})
            if r.mean < p.solve_score:
                return False
            if episodes >= p.eval_episodes:
                state["solved"] = (wall, steps)
                return True
        return False

    class Protocolled(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_check = p.check_every_s

        def _on_step(self) -> bool:
            wall = time.monotonic() - t0
            if wall >= p.budget_s:
                return False
            if wall >= self.next_check:
                if check(self.num_timesteps):
                    return False
                self.next_check = time.monotonic() - t0 + p.check_every_s
            return True

    model.learn(total_timesteps=total, callback=Protocolled())
    wall = time.monotonic() - t0
    steps = int(model.num_timesteps)
    final = evaluate(q, p.env_id, p.eval_episodes, seed, REEVAL_ROUND)  # the model learn() returns
    model.save(run_dir / "sb3_dqn_final.zip")
    solved = state["solved"]
    return {
        "solved": solved is not None, "time_to_solve_s": solved[0] if solved else None,
        "steps_to_solve": solved[1] if solved else None, "wall_time_s": wall, "total_steps": steps,
        "steps_per_second": steps / max(wall, 1e-9),
        "final_eval": {"mean": final.mean, "std": final.std, "episodes": final.episodes, "policy": "final model"},
        "evals": state["evals"], "workers": 1, "torch_threads": torch.get_num_threads(),
        "hyperparameters": {**hp, "exploration_steps": RL_ZOO_EXPLORATION_STEPS},
    }


def run_one(contender: str, seed: int, p: Protocol, out_dir: Path,
            overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one contender with one seed in this process; returns its record."""
    if contender not in CONTENDERS:
        raise AsyncDQNError(f"unknown contender {contender!r}; known: {', '.join(CONTENDERS)}")
    run_dir = out_dir / f"{contender}-seed{seed}"
    rss: dict[str, float | None]
    if contender == "sb3-dqn":
        run_dir.mkdir(parents=True, exist_ok=False)
        record = _run_sb3(seed, p, run_dir)
        rss = {**peak_rss_mb(), "largest_worker_mb": None}  # single process: no workers
    else:
        record = _run_asyncdqn(contender, seed, p, run_dir, overrides if contender in OURS else None)
        rss = {**peak_rss_mb()}
    return {"contender": contender, "seed": seed, "protocol": asdict(p), "run_dir": str(run_dir),
            "overrides": overrides if contender in OURS else {},
            "peak_rss": rss, **record}


# -------------------------------------------------------------------- summary
def summarize(records: list[dict[str, Any]], budget_s: float) -> dict[str, Any]:
    """Per contender: solved fraction, median/min/max time and steps (unsolved = budget), final greedy."""
    out: dict[str, Any] = {}
    for name in CONTENDERS:
        rs = sorted((r for r in records if r["contender"] == name), key=lambda r: r["seed"])
        if not rs:
            continue
        times = [r["time_to_solve_s"] if r["solved"] else budget_s for r in rs]
        steps = [r["steps_to_solve"] if r["solved"] else r["total_steps"] for r in rs]
        finals = [r["final_eval"]["mean"] for r in rs if np.isfinite(r["final_eval"]["mean"])] or [float("nan")]
        out[name] = {
            "runs": len(rs), "solved": sum(r["solved"] for r in rs), "seeds": [r["seed"] for r in rs],
            "time_s": {"median": median(times), "min": min(times), "max": max(times), "each": times},
            "steps": {"median": median(steps), "min": min(steps), "max": max(steps), "each": steps},
            "steps_per_second_median": median([r["steps_per_second"] for r in rs]),
            "final_greedy": {"mean": float(np.mean(finals)), "std_across_seeds": float(np.std(finals)),
                             "each": [(r["final_eval"]["mean"], r["final_eval"]["std"]) for r in rs]},
            "peak_rss_mb": {"main": max(r["peak_rss"]["main_mb"] for r in rs),
                            "largest_worker": max((r["peak_rss"]["largest_worker_mb"] or 0.0) for r in rs) or None,
                            "workers": rs[0].get("workers")},
        }
    for mine in OURS:  # "asyncdqn_speedup", "asyncdqn_envpool_speedup": how much faster ours solved
        if mine in out:
            ours = out[mine]["time_s"]["median"]
            for name, s in out.items():
                if name not in OURS:
                    s[f"{mine.replace('-', '_')}_speedup"] = s["time_s"]["median"] / ours
    return out


def _mb(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f}"


def format_summary(summary: dict[str, Any], p: Protocol) -> str:
    lines = [
        f"Time to solve {p.env_id}: greedy mean >= {p.solve_score:g} over {p.eval_episodes} fresh episodes, "
        f"checked every {p.check_every_s:g} s (screen of {p.screen_episodes}), budget {p.budget_s:g} s "
        "(unsolved runs count as the budget).",
        "",
        "| contender | solved | median s | min s | max s | median env steps | steps/s | final greedy mean ± std "
        "| peak RSS main / worker (MB) | asyncdqn faster by | asyncdqn-envpool faster by |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        speed = " | ".join(f"{s[k]:.1f}×" if k in s else "—"
                           for k in ("asyncdqn_speedup", "asyncdqn_envpool_speedup"))
        lines.append(
            f"| {name} | {s['solved']}/{s['runs']} | {s['time_s']['median']:.1f} | {s['time_s']['min']:.1f} "
            f"| {s['time_s']['max']:.1f} | {s['steps']['median']:,.0f} | {s['steps_per_second_median']:,.0f} "
            f"| {s['final_greedy']['mean']:.1f} ± {s['final_greedy']['std_across_seeds']:.1f} "
            f"| {s['peak_rss_mb']['main']:.0f} / {_mb(s['peak_rss_mb']['largest_worker'])} | {speed} |"
        )
    return "\n".join(lines)


def plot_solve(records: list[dict[str, Any]], p: Protocol, out: Path) -> Path:
    """Greedy return against wall time, every check of every run; solves marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from asyncdqn.report.plotting import save_png

    fig, ax = plt.subplots(figsize=(9, 5))
    colors = dict(zip(CONTENDERS, ("tab:blue", "tab:purple", "tab:red", "tab:brown", "tab:orange", "tab:green"),
                      strict=True))
    for name in CONTENDERS:
        first = True
        for r in sorted((r for r in records if r["contender"] == name), key=lambda r: r["seed"]):
            if not r["evals"]:
                continue
            t = [e["wall_s"] for e in r["evals"]]
            m = [max(e["mean"], -500.0) for e in r["evals"]]
            ax.plot(t, m, "-", color=colors[name], alpha=0.6, lw=1.2, label=name if first else None)
            first = False
            if r["solved"]:
                ax.plot([r["time_to_solve_s"]], [r["evals"][-1]["mean"]], "*", color=colors[name], ms=12)
    ax.axhline(p.solve_score, color="k", ls="--", lw=0.8)
    ax.axvline(p.budget_s, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("greedy mean return (clipped at -500)")
    ax.set_title(f"{p.env_id}: greedy evaluations every {p.check_every_s:g} s; ★ = solved "
                 f"({p.eval_episodes}-episode mean ≥ {p.solve_score:g})")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    save_png(fig, out)
    plt.close(fig)
    return out


# --------------------------------------------------------------------- driver
def run_solve(
    out_dir: Path,
    contenders: Sequence[str],
    seeds: Sequence[int],
    p: Protocol,
    parallel: int = 1,
    log: Callable[[str], None] = print,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run every (contender, seed) missing from `out_dir` as a subprocess, then summarize.

    `overrides` (options over the asyncdqn contender's preset) serve preset searches:
    give each variant its own `out_dir`.

    `parallel` > 1 runs that many single-process runs (sb3-dqn) side by side, one
    core each; the asynchronous contenders always run alone (they use every core).
    """
    for c in contenders:
        if c not in CONTENDERS:
            raise AsyncDQNError(f"--contenders: unknown contender {c!r}; known: {', '.join(CONTENDERS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Seed-major order: stopped at any point, every contender has about as many runs done.
    todo = [(c, s) for s in seeds for c in contenders if not (out_dir / f"{c}-seed{s}.json").exists()]
    single = [(c, s) for c, s in todo if c == "sb3-dqn"]
    if parallel <= 1:
        for c, s in todo:
            _run_batch([(c, s)], p, out_dir, log, overrides)
    else:
        for c, s in [(c, s) for c, s in todo if c != "sb3-dqn"]:
            _run_batch([(c, s)], p, out_dir, log, overrides)
        for i in range(0, len(single), parallel):
            _run_batch(single[i:i + parallel], p, out_dir, log)
    records = [json.loads((out_dir / f"{c}-seed{s}.json").read_text())
               for c in contenders for s in seeds if (out_dir / f"{c}-seed{s}.json").exists()]
    summary = summarize(records, p.budget_s)
    report = {"protocol": asdict(p), "machine": machine_info(), "summary": summary, "overrides": overrides or {},
              "command": " ".join(sys.argv)}
    atomic_write_json(out_dir / "summary.json", report)
    table = format_summary(summary, p)
    (out_dir / "summary.md").write_text(table + "\n")
    plot_solve(records, p, out_dir / "solve_curves.png")
    return {"report": report, "table": table, "records": records}


def _run_batch(batch: list[tuple[str, int]], p: Protocol, out_dir: Path, log: Callable[[str], None],
               overrides: dict[str, Any] | None = None) -> None:
    if any(c == "asyncdqn-ray-cluster" for c, _ in batch):
        with running_ray_cluster() as address:
            return _run_batch_in(batch, p, out_dir, log, overrides, {"ASYNCDQN_BENCH_RAY_ADDRESS": address})
    return _run_batch_in(batch, p, out_dir, log, overrides, {})


@contextlib.contextmanager
def running_ray_cluster() -> Iterator[str]:
    """A one-node Ray cluster on this machine (all its CPUs), up before the block and stopped after
    it; yields its address. The run inside joins it as a team's run joins their cluster."""
    from asyncdqn.backends.ray import RAY_SYSTEM_CONFIG, import_ray

    import_ray()
    from ray.cluster_utils import Cluster

    cluster: Any = Cluster(initialize_head=True, head_node_args={"num_cpus": os.cpu_count() or 1,
                                                                 "include_dashboard": False,
                                                                 "_system_config": RAY_SYSTEM_CONFIG})
    try:
        cluster.wait_for_nodes()
        yield str(cluster.address)
    finally:
        cluster.shutdown()


def _run_batch_in(batch: list[tuple[str, int]], p: Protocol, out_dir: Path, log: Callable[[str], None],
                  overrides: dict[str, Any] | None, extra_env: dict[str, str]) -> None:
    procs = []
    env = {**os.environ, **extra_env,
           "ASYNCDQN_SB3_THREADS": str(max(1, (os.cpu_count() or 1) // len(batch)))}
    for c, s in batch:
        log(f"running {c} seed {s} (budget {p.budget_s:g} s) ...")
        cmd = [sys.executable, "-m", "asyncdqn.bench.solve", "--contender", c, "--seed", str(s),
               "--out-dir", str(out_dir), "--protocol", json.dumps(asdict(p)),
               "--overrides", json.dumps(overrides or {})]
        procs.append((c, s, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)))
    for c, s, proc in procs:
        _, err = proc.communicate()
        path = out_dir / f"{c}-seed{s}.json"
        if proc.returncode != 0 or not path.exists():
            tail = "\n".join(err.strip().splitlines()[-5:])
            raise AsyncDQNError(f"bench solve: {c} seed {s} failed (exit {proc.returncode}):\n{tail}")
        r = json.loads(path.read_text())
        what = f"solved in {r['time_to_solve_s']:.1f} s / {r['steps_to_solve']:,} steps" if r["solved"] \
            else f"not solved in {r['wall_time_s']:.0f} s"
        log(f"  {c} seed {s}: {what}; final greedy {r['final_eval']['mean']:.1f} ± {r['final_eval']['std']:.1f}")


def _child_main(argv: list[str] | None = None) -> int:
    """`python -m asyncdqn.bench.solve --contender C --seed S --out-dir D --protocol JSON` (one run)."""
    ap = argparse.ArgumentParser(prog="python -m asyncdqn.bench.solve")
    ap.add_argument("--contender", required=True, choices=CONTENDERS)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--protocol", required=True)
    ap.add_argument("--overrides", default="{}", help="JSON: options over asyncdqn's preset (preset searches)")
    a = ap.parse_args(argv)
    out_dir = Path(a.out_dir)
    record = run_one(a.contender, a.seed, Protocol(**json.loads(a.protocol)), out_dir, json.loads(a.overrides))
    atomic_write_json(out_dir / f"{a.contender}-seed{a.seed}.json", record)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
