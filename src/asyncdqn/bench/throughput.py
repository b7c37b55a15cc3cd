"""Throughput benchmark: the trainer's env steps/s as a fraction of the raw environment ceiling.

In one run, on the same machine and for the same process count and environments
per worker:
  1. the ceiling: W processes stepping K environments each with random actions
     through the same vector stepper as the trainer (--vector gymnasium / envpool),
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
from pathlib import Path
from typing import Any

import numpy as np

from asyncdqn.backends.base import SPAWN
from asyncdqn.config import ASYNC_ALGOS, Config, resolve_config
from asyncdqn.envs import inspect_env


@dataclass(frozen=True)
class Measurement:
    kind: str  # "ceiling" or an algorithm name
    workers: int
    envs_per_worker: int
    steps: int
    seconds: float
    memory: dict[str, Any] | None = None
    vector: str = "gymnasium"
    cpu_seconds: float | None = None  # CPU time the worker processes used in the window (all threads)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds

    @property
    def steps_per_cpu_second(self) -> float | None:
        """Steps per CPU-second of the worker processes: on a machine shared with other jobs
        this moves far less than wall-clock rates, so ratios of it are the steadier figure."""
        return self.steps / self.cpu_seconds if self.cpu_seconds else None


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU time of processes `pids` (all their threads), from /proc; None if unavailable."""
    total = 0.0
    try:
        tick = os.sysconf("SC_CLK_TCK")
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15)
    except (OSError, ValueError, IndexError):
        return None
    return total


def _random_stepper(vector: str, env_id: str, k: int, seed: int, counter: Any, stop: Any) -> None:
    """Ceiling worker: step k envs through `vector`'s stepper with random actions until told to stop."""
    from asyncdqn.vector import make_stepper

    stepper = make_stepper(vector, env_id, [seed * 1000 + i for i in range(k)])
    stepper.reset()
    rng = np.random.default_rng(seed)
    done_steps = 0
    while not stop.is_set():
        for _ in range(50):
            stepper.step(rng.integers(0, stepper.n_actions, size=k))
        done_steps += 50 * k
        counter[seed] = done_steps
    stepper.close()


def measure_ceiling(env_id: str, workers: int, k: int, seconds: float, vector: str = "gymnasium") -> Measurement:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    counter = SPAWN.Array("q", workers, lock=False)
    stop = SPAWN.Event()
    procs = [SPAWN.Process(target=_random_stepper, args=(vector, env_id, k, i, counter, stop), daemon=True)
             for i in range(workers)]
    for p in procs:
        p.start()
    try:
        while min(counter) == 0:  # every process is stepping
            if not all(p.is_alive() for p in procs):
                raise RuntimeError(f"a ceiling process ({vector}) died before stepping; see its error above")
            time.sleep(0.05)
        pids = [p.pid for p in procs if p.pid is not None]
        s0, t0, c0 = sum(counter), time.perf_counter(), cpu_seconds(pids)
        time.sleep(seconds)
        s1, t1, c1 = sum(counter), time.perf_counter(), cpu_seconds(pids)
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    cpu = c1 - c0 if c0 is not None and c1 is not None else None
    return Measurement("ceiling", workers, k, s1 - s0, t1 - t0, vector=vector, cpu_seconds=cpu)


def process_memory(pid: int) -> dict[str, float]:
    """Memory of a live process in MB (Linux /proc): peak RSS, RSS, PSS and shared-memory RSS.

    PSS splits each shared page between the processes mapping it, so summing PSS
    over processes gives the true total; RSS counts shared pages (torch's
    libraries, the shared model) once per process.
    """
    out: dict[str, float] = {}
    fields = {"VmHWM": "peak_rss_mb", "VmRSS": "rss_mb", "RssShmem": "shmem_rss_mb"}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in fields:
                out[fields[key]] = int(line.split()[1]) / 1024
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["pss_mb"] = int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass  # not Linux, or the process is gone
    return out


def memory_report(worker_pids: list[int], model: Any) -> dict[str, Any]:
    """Per-worker and total memory, and where the model's parameters live."""
    workers = [process_memory(pid) for pid in worker_pids]
    main = process_memory(os.getpid())
    params = list(model.parameters())
    total_pss = sum(w.get("pss_mb", 0.0) for w in workers) + main.get("pss_mb", 0.0)
    return {
        "main": main, "workers": workers,
        "total_pss_mb": total_pss,
        "model_mb": sum(p.numel() * p.element_size() for p in params) / 2**20,
        "model_in_shared_memory": all(p.is_shared() for p in params),
    }


def measure_trainer(cfg: Config, seconds: float) -> Measurement:
    """Steps/s of cfg's backend learning from every transition (no evaluation)."""
    from asyncdqn.backends import make_backend
    from asyncdqn.backends.shared import build_shared

    spec = inspect_env(cfg.env_id, cfg.max_episode_steps)
    shared = build_shared(cfg, spec)
    shared.target.sync_from(shared.model, 0)
    backend = make_backend(cfg, shared)
    backend.start()
    try:
        while min(shared.counter.per_worker()) == 0:
            backend.poll(timeout=0.05)
        pids = [p.pid for p in getattr(backend, "procs", [])]
        s0, t0, c0 = shared.counter.value, time.perf_counter(), cpu_seconds(pids) if pids else None
        while time.perf_counter() - t0 < seconds:
            backend.poll(timeout=0.05)
        s1, t1, c1 = shared.counter.value, time.perf_counter(), cpu_seconds(pids) if pids else None
        memory = memory_report(pids, shared.model)
    finally:
        backend.stop()
    cpu = c1 - c0 if c0 is not None and c1 is not None else None
    return Measurement(cfg.algo, cfg.resolved_workers(), cfg.envs_per_worker, s1 - s0, t1 - t0, memory,
                       vector=cfg.vector, cpu_seconds=cpu)


def available_vectors() -> tuple[str, ...]:
    """The vector steppers this installation can run (envpool only with the envpool extra)."""
    import importlib.util

    return ("gymnasium", "envpool") if importlib.util.find_spec("envpool") else ("gymnasium",)


def _row(m: Measurement, backend: str, ceiling: Measurement | None) -> dict[str, Any]:
    ratio = 1.0 if ceiling is None else m.steps_per_second / ceiling.steps_per_second
    cpu_ratio = None
    if ceiling is None:
        cpu_ratio = 1.0 if m.steps_per_cpu_second else None
    elif m.steps_per_cpu_second and ceiling.steps_per_cpu_second:
        cpu_ratio = m.steps_per_cpu_second / ceiling.steps_per_cpu_second
    return {**m.__dict__, "backend": backend, "steps_per_second": m.steps_per_second,
            "steps_per_cpu_second": m.steps_per_cpu_second, "ratio": ratio, "cpu_ratio": cpu_ratio}


def run_throughput(
    env_id: str = "LunarLander-v3",
    algos: tuple[str, ...] = ASYNC_ALGOS,
    max_workers: int | None = None,
    seconds: float = 10.0,
    overrides: dict[str, Any] | None = None,
    log: Any = print,
    backends: tuple[str, ...] = ("process",),
    vectors: tuple[str, ...] = ("gymnasium",),
) -> dict[str, Any]:
    """Ceiling and trainer throughput for 1..max_workers workers, each vector stepper and each
    backend; returns a JSON-able report. Each trainer row's ratio is to the ceiling of the same
    stepper, worker count and envs per worker, measured in the same run."""
    max_workers = max_workers or (os.cpu_count() or 1)
    rows: list[dict[str, Any]] = []
    for w in range(1, max_workers + 1):
        for vector in vectors:
            base = resolve_config({"env_id": env_id, "workers": w, "max_steps": 10**12, "progress": False,
                                   **(overrides or {}), "vector": vector})
            ceiling = measure_ceiling(env_id, w, base.envs_per_worker, seconds, vector)
            log(f"workers={w} {vector} ceiling: {ceiling.steps_per_second:,.0f} steps/s"
                + (f" ({ceiling.steps_per_cpu_second:,.0f} per CPU-second)" if ceiling.steps_per_cpu_second else ""))
            rows.append(_row(ceiling, "-", None))
            for algo in algos:
                for backend in backends:
                    m = measure_trainer(base.replace(algo=algo, backend=backend), seconds)
                    row = _row(m, backend, ceiling)
                    mem = m.memory or {}
                    peaks = [x.get("peak_rss_mb", float("nan")) for x in mem.get("workers", [])]
                    memory = (f"; peak RSS per worker {', '.join(f'{p:.0f}' for p in peaks)} MB, "
                              f"total PSS {mem.get('total_pss_mb', float('nan')):.0f} MB") if peaks else ""
                    cpu = f" ({row['cpu_ratio']:.1%} per CPU-second)" if row["cpu_ratio"] is not None else ""
                    log(f"workers={w} {vector} {backend} {algo}: {m.steps_per_second:,.0f} steps/s = "
                        f"{row['ratio']:.1%} of the ceiling{cpu}{memory}")
                    rows.append(row)
    return {"env_id": env_id, "seconds": seconds, "cpu_count": os.cpu_count(), "vectors": list(vectors),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None, "rows": rows}


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'workers':>7}  {'vector':<9} {'backend':<8} {'what':<15} {'envs/worker':>11} {'steps/s':>10} "
             f"{'of ceiling':>10} {'per CPU-s':>9} {'peak RSS/worker MB':>18} {'total PSS MB':>12}"]
    for r in report["rows"]:
        mem = r.get("memory") or {}
        peaks = [w["peak_rss_mb"] for w in mem.get("workers", []) if "peak_rss_mb" in w]
        peak = f"{max(peaks):.0f}" if peaks else "-"
        pss = f"{mem['total_pss_mb']:.0f}" if peaks and mem.get("total_pss_mb") else "-"
        cpu = f"{r['cpu_ratio']:.1%}" if r.get("cpu_ratio") is not None else "-"
        lines.append(f"{r['workers']:>7}  {r.get('vector', 'gymnasium'):<9} {r.get('backend', 'process'):<8} "
                     f"{r['kind']:<15} {r['envs_per_worker']:>11} {r['steps_per_second']:>10,.0f} "
                     f"{r['ratio']:>10.1%} {cpu:>9} {peak:>18} {pss:>12}")
    return "\n".join(lines)
