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

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asyncdqn.backends.base import SPAWN, TRAINER_POLL_S, Backend, SharedTraining
from asyncdqn.config import ASYNC_ALGOS, Config, resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.envs.pixels import frames_per_step

SETTLE_S = 2.0  # the trainer is measured from this long after every worker counted its first steps


@dataclass(frozen=True)
class Measurement:
    kind: str  # "ceiling" or an algorithm name
    workers: int
    envs_per_worker: int
    steps: int
    seconds: float
    memory: dict[str, Any] | None = None
    cpu_seconds: float | None = None  # CPU time of this process and its descendants over the window
    vector: str = "gymnasium"  # the vector stepper (--vector) the row's workers stepped their envs through

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds

    @property
    def steps_per_cpu_second(self) -> float | None:
        """Steps per CPU-second of everything the run started: robust to other jobs on a shared machine
        (they slow the wall clock, not this), and on a dedicated machine steps/s ~ cores x this."""
        return self.steps / self.cpu_seconds if self.cpu_seconds else None


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) used so far by process `root` and all its live descendants (Linux /proc).

    Counts the whole run on a shared machine: workers, the trainer, and for the ray backend the
    Ray daemons and actors it started (children of this process). Other jobs are not counted."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        parent[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def _random_stepper(env_id: str, k: int, seed: int, counter: Any, stop: Any,
                    env_kwargs: dict[str, Any] | None = None, vector: str = "gymnasium") -> None:
    """Ceiling worker: step k envs through the trainer's vector stepper (`vector`, wrappers
    included) with random actions until told to stop."""
    from asyncdqn.envs.vector import make_stepper

    stepper = make_stepper(vector, env_id, [seed * 1000 + i for i in range(k)], None, env_kwargs)
    stepper.reset()
    rng = np.random.default_rng(seed)
    done_steps = 0
    while not stop.is_set():
        for _ in range(50):
            stepper.step(rng.integers(0, stepper.n_actions, size=k))
        done_steps += 50 * k
        counter[seed] = done_steps
    stepper.close()


def measure_ceiling(env_id: str, workers: int, k: int, seconds: float,
                    env_kwargs: dict[str, Any] | None = None, vector: str = "gymnasium") -> Measurement:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    counter = SPAWN.Array("q", workers, lock=False)
    stop = SPAWN.Event()
    procs = [SPAWN.Process(target=_random_stepper, args=(env_id, k, i, counter, stop, env_kwargs, vector),
                           daemon=True)
             for i in range(workers)]
    for p in procs:
        p.start()
    try:
        while min(counter) == 0:  # every process is stepping
            if not all(p.is_alive() for p in procs):
                raise RuntimeError(f"a ceiling process ({vector}) died before stepping; see its error above")
            time.sleep(0.05)
        s0, t0, c0 = sum(counter), time.perf_counter(), tree_cpu_seconds(os.getpid())
        time.sleep(seconds)
        s1, t1, c1 = sum(counter), time.perf_counter(), tree_cpu_seconds(os.getpid())
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    return Measurement("ceiling", workers, k, s1 - s0, t1 - t0, cpu_seconds=c1 - c0, vector=vector)


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


@contextlib.contextmanager
def simulated_cluster(nodes: int, cpus: int) -> Iterator[None]:
    """A Ray cluster of `nodes` raylets on this machine (ray.cluster_utils.Cluster), `cpus` CPUs split
    between them, for the duration of the block; the ray backend then puts one node group on each."""
    from asyncdqn.backends.ray import RAY_SYSTEM_CONFIG, import_ray

    ray = import_ray()
    from ray.cluster_utils import Cluster

    share = [cpus // nodes + (1 if i < cpus % nodes else 0) for i in range(nodes)]
    cluster: Any = Cluster(initialize_head=True, head_node_args={"num_cpus": share[0], "include_dashboard": False,
                                                                 "_system_config": RAY_SYSTEM_CONFIG})
    try:
        for n in share[1:]:
            cluster.add_node(num_cpus=n)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()


def measure_trainer(cfg: Config, seconds: float, ray_nodes: int = 1) -> Measurement:
    """Steps/s of cfg's backend learning from every transition (no evaluation). With the ray backend
    and `ray_nodes` > 1, on a simulated cluster of that many nodes sharing this machine's cores."""
    if cfg.backend == "ray" and ray_nodes > 1:
        with simulated_cluster(ray_nodes, cfg.resolved_workers()):
            return measure_trainer(cfg, seconds)
    with settled_backend(cfg) as (shared, backend):
        s0, t0, c0 = shared.counter.value, time.perf_counter(), tree_cpu_seconds(os.getpid())
        while time.perf_counter() - t0 < seconds:  # polled as the trainer polls (ray: counts only, mostly)
            backend.poll(timeout=TRAINER_POLL_S)
        s1, t1, c1 = shared.counter.value, time.perf_counter(), tree_cpu_seconds(os.getpid())
        pids = [p.pid for p in getattr(backend, "procs", [])]
        memory = memory_report(pids, shared.model)
    return Measurement(cfg.algo, cfg.resolved_workers(), cfg.envs_per_worker, s1 - s0, t1 - t0, memory, c1 - c0,
                       vector=cfg.vector)


@contextlib.contextmanager
def settled_backend(cfg: Config) -> Iterator[tuple[SharedTraining, Backend]]:
    """cfg's backend on fresh shared state (the target a copy of the online network), started and
    polled as the trainer polls until every worker has counted steps and SETTLE_S more have passed
    (start-up transients, e.g. Ray's idle workers, are over); yields (SharedTraining, backend) and
    stops the backend after the block. Learning throughput falls as the agent learns, so every
    comparison measures its contenders in the same window after their first steps."""
    from asyncdqn.backends import make_backend
    from asyncdqn.backends.shared import build_shared

    spec = inspect_env(cfg.env_id, cfg.max_episode_steps, cfg.env_kwargs)
    shared = build_shared(cfg, spec)
    shared.target.sync_from(shared.model, 0)
    backend = make_backend(cfg, shared)
    backend.start()
    try:
        while min(shared.counter.per_worker()) == 0:
            backend.poll(timeout=0.05)
        settle = time.perf_counter()
        while time.perf_counter() - settle < SETTLE_S:
            backend.poll(timeout=TRAINER_POLL_S)
        yield shared, backend
    finally:
        backend.stop()


def run_throughput(
    env_id: str = "LunarLander-v3",
    algos: tuple[str, ...] = ASYNC_ALGOS,
    max_workers: int | None = None,
    seconds: float = 10.0,
    overrides: dict[str, Any] | None = None,
    log: Any = print,
    backends: tuple[str, ...] = ("process",),
    ray_nodes: tuple[int, ...] = (1,),
    vectors: tuple[str, ...] = ("gymnasium",),
) -> dict[str, Any]:
    """Ceiling and trainer throughput for 1..max_workers workers, each vector stepper (--vector: each
    with its own ceiling, measured in the same run) and each backend; returns a JSON-able report.

    The ray backend is measured once per entry of `ray_nodes` (1: a local Ray; N > 1: a simulated
    N-node cluster on this machine, skipped when there are fewer workers than nodes)."""
    max_workers = max_workers or (os.cpu_count() or 1)
    rows: list[dict[str, Any]] = []
    for w, vector in ((w, v) for w in range(1, max_workers + 1) for v in vectors):
        base = resolve_config({"env_id": env_id, "workers": w, "max_steps": 10**12, "progress": False,
                               **(overrides or {}), "vector": vector})
        ceiling = measure_ceiling(env_id, w, base.envs_per_worker, seconds, base.env_kwargs, vector)
        frames = frames_per_step(env_id, base.env_kwargs)
        per_frame = f" ({ceiling.steps_per_second * frames:,.0f} frames/s)" if frames > 1 else ""
        log(f"workers={w} {vector} ceiling: {ceiling.steps_per_second:,.0f} steps/s{per_frame}")
        rows.append({**ceiling.__dict__, "backend": "-", "steps_per_second": ceiling.steps_per_second,
                     "ratio": 1.0, "steps_per_cpu_second": ceiling.steps_per_cpu_second, "cpu_ratio": 1.0})
        for algo in algos:
            runs = [(b, n) for b in backends for n in (ray_nodes if b == "ray" else (1,)) if n <= w]
            for backend, nodes in runs:
                m = measure_trainer(base.replace(algo=algo, backend=backend), seconds, nodes)
                ratio = m.steps_per_second / ceiling.steps_per_second
                mem = m.memory or {}
                peaks = [x.get("peak_rss_mb", float("nan")) for x in mem.get("workers", [])]
                memory = (f"; peak RSS per worker {', '.join(f'{p:.0f}' for p in peaks)} MB, "
                          f"total PSS {mem.get('total_pss_mb', float('nan')):.0f} MB") if peaks else ""
                label = backend if backend != "ray" else f"ray/{nodes}n"
                per_frame = f" ({m.steps_per_second * frames:,.0f} frames/s)" if frames > 1 else ""
                log(f"workers={w} {vector} {label} {algo}: {m.steps_per_second:,.0f} steps/s{per_frame} = {ratio:.1%} "
                    f"of the ceiling{memory}")
                per_cpu, ceiling_per_cpu = m.steps_per_cpu_second, ceiling.steps_per_cpu_second
                rows.append({**m.__dict__, "backend": label, "steps_per_second": m.steps_per_second,
                             "ratio": ratio, **({"ray_nodes": nodes} if backend == "ray" else {}),
                             "steps_per_cpu_second": per_cpu,
                             "cpu_ratio": per_cpu / ceiling_per_cpu if per_cpu and ceiling_per_cpu else None})
    # emulator frames per agent step (ALE images: 4), so frames/s = steps/s * this
    fps = frames_per_step(env_id, base.env_kwargs)
    return {"env_id": env_id, "seconds": seconds, "overrides": dict(overrides or {}), "cpu_count": os.cpu_count(),
            "frames_per_step": fps,
            "vectors": list(vectors), "load_average": list(os.getloadavg()), "rows": rows}


def available_vectors() -> tuple[str, ...]:
    """The vector steppers this installation can run (envpool only with the envpool extra)."""
    import importlib.util

    return ("gymnasium", "envpool") if importlib.util.find_spec("envpool") else ("gymnasium",)


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'workers':>7}  {'vector':<9} {'backend':<8} {'what':<15} {'envs/worker':>11} {'steps/s':>10} "
             f"{'of ceiling':>10} {'steps/CPU-s':>11} {'of ceiling':>10} {'peak RSS/worker MB':>18} "
             f"{'total PSS MB':>12}"]
    for r in report["rows"]:
        mem = r.get("memory") or {}
        peaks = [w["peak_rss_mb"] for w in mem.get("workers", []) if "peak_rss_mb" in w]
        peak = f"{max(peaks):.0f}" if peaks else "-"
        pss = f"{mem['total_pss_mb']:.0f}" if peaks and mem.get("total_pss_mb") else "-"
        per_cpu = f"{r['steps_per_cpu_second']:,.0f}" if r.get("steps_per_cpu_second") else "-"
        cpu_ratio = f"{r['cpu_ratio']:.1%}" if r.get("cpu_ratio") else "-"
        lines.append(f"{r['workers']:>7}  {r.get('vector', 'gymnasium'):<9} {r.get('backend', 'process'):<8} "
                     f"{r['kind']:<15} {r['envs_per_worker']:>11} "
                     f"{r['steps_per_second']:>10,.0f} {r['ratio']:>10.1%} {per_cpu:>11} {cpu_ratio:>10} "
                     f"{peak:>18} {pss:>12}")
    return "\n".join(lines)
