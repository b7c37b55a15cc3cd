"""Throughput benchmark: the trainer's env steps/s as a fraction of the raw environment ceiling.

In one run, on the same machine and for the same process count and environments
per worker:
  1. the ceiling: W processes stepping K environments each with random actions,
     no network, no learning;
  2. the trainer: W actor-learners learning from every transition, per algorithm.
Both are measured over a fixed window after every process has started, so
process start-up does not count. Timings on a shared machine are noisy; the
ratio of two measurements taken minutes apart is the figure to quote.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from asyncdqn.backends.base import SPAWN
from asyncdqn.config import ASYNC_ALGOS, Config, resolve_config
from asyncdqn.envs import inspect_env, make_vector_env


@dataclass(frozen=True)
class Measurement:
    kind: str  # "ceiling" or an algorithm name
    workers: int
    envs_per_worker: int
    steps: int
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds


def _random_stepper(env_id: str, k: int, seed: int, counter: Any, stop: Any) -> None:
    """Ceiling worker: step k envs with random actions until told to stop."""
    envs = make_vector_env(env_id, k)
    envs.reset(seed=[seed * 1000 + i for i in range(k)])
    rng = np.random.default_rng(seed)
    n_actions = int(envs.single_action_space.n)  # type: ignore[attr-defined]
    done_steps = 0
    while not stop.is_set():
        for _ in range(50):
            envs.step(rng.integers(0, n_actions, size=k))
        done_steps += 50 * k
        counter[seed] = done_steps
    envs.close()


def measure_ceiling(env_id: str, workers: int, k: int, seconds: float) -> Measurement:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    counter = SPAWN.Array("q", workers, lock=False)
    stop = SPAWN.Event()
    procs = [SPAWN.Process(target=_random_stepper, args=(env_id, k, i, counter, stop), daemon=True)
             for i in range(workers)]
    for p in procs:
        p.start()
    try:
        while min(counter) == 0:  # every process is stepping
            time.sleep(0.05)
        s0, t0 = sum(counter), time.perf_counter()
        time.sleep(seconds)
        s1, t1 = sum(counter), time.perf_counter()
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    return Measurement("ceiling", workers, k, s1 - s0, t1 - t0)


def measure_trainer(cfg: Config, seconds: float) -> Measurement:
    """Steps/s of the process backend learning from every transition (no evaluation)."""
    from asyncdqn.backends import make_backend
    from asyncdqn.trainer import build_shared

    spec = inspect_env(cfg.env_id, cfg.max_episode_steps)
    shared = build_shared(cfg, spec)
    shared.target.sync_from(shared.model, 0)
    backend = make_backend(cfg, shared)
    backend.start()
    try:
        while min(shared.counter.per_worker()) == 0:
            backend.poll(timeout=0.05)
        s0, t0 = shared.counter.value, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            backend.poll(timeout=0.05)
        s1, t1 = shared.counter.value, time.perf_counter()
    finally:
        backend.stop()
    return Measurement(cfg.algo, cfg.resolved_workers(), cfg.envs_per_worker, s1 - s0, t1 - t0)


def run_throughput(
    env_id: str = "LunarLander-v3",
    algos: tuple[str, ...] = ASYNC_ALGOS,
    max_workers: int | None = None,
    seconds: float = 10.0,
    overrides: dict[str, Any] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Ceiling and trainer throughput for 1..max_workers workers; returns a JSON-able report."""
    max_workers = max_workers or (os.cpu_count() or 1)
    rows: list[dict[str, Any]] = []
    for w in range(1, max_workers + 1):
        base = resolve_config({"env_id": env_id, "workers": w, "max_steps": 10**12, "progress": False,
                               **(overrides or {})})
        ceiling = measure_ceiling(env_id, w, base.envs_per_worker, seconds)
        log(f"workers={w} ceiling: {ceiling.steps_per_second:,.0f} steps/s")
        rows.append({**ceiling.__dict__, "steps_per_second": ceiling.steps_per_second, "ratio": 1.0})
        for algo in algos:
            m = measure_trainer(base.replace(algo=algo), seconds)
            ratio = m.steps_per_second / ceiling.steps_per_second
            log(f"workers={w} {algo}: {m.steps_per_second:,.0f} steps/s = {ratio:.1%} of the ceiling")
            rows.append({**m.__dict__, "steps_per_second": m.steps_per_second, "ratio": ratio})
    return {"env_id": env_id, "seconds": seconds, "cpu_count": os.cpu_count(), "rows": rows}


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'workers':>7}  {'what':<15} {'envs/worker':>11} {'steps/s':>10} {'of ceiling':>10}"]
    for r in report["rows"]:
        lines.append(f"{r['workers']:>7}  {r['kind']:<15} {r['envs_per_worker']:>11} "
                     f"{r['steps_per_second']:>10,.0f} {r['ratio']:>10.1%}")
    return "\n".join(lines)
