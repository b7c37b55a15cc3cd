"""One run of a backend, measured in consecutive 5 s windows (LunarLander-v3, 2 workers, learning).

    .venv/bin/python benchmarks/records/ray-sole-2026-12-01/windows.py [--backend ray|process] [--windows 10]
        [--renice]

Prints each window's steps/s, the Hogwild workers' cores and their steps per worker-CPU-second.
With --renice (ray only), every other window runs Ray's own processes (daemons, server, node group
actor; not the workers, not this driver) at nice 19 instead of 0, to see whether their wake-ups
slow the workers (needs the right to raise niceness: always granted).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ray-overhead-2026-12-01"))
from cpu_split import role, snapshot

RAY_ROLES = ("node group actor", "parameter server actor", "ray daemons / idle workers")


def renice(pids: list[int], nice: int) -> None:
    for pid in pids:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except OSError:
            pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="ray")
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--renice", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from asyncdqn.bench.throughput import settled_backend  # started, every worker stepping, 2 s settled
    from asyncdqn.config import resolve_config

    cfg = resolve_config({"env_id": "LunarLander-v3", "workers": 2, "max_steps": 10**12, "progress": False,
                          "backend": args.backend})
    me = os.getpid()
    by_nice: dict[int, list[float]] = {0: [], 19: []}
    with settled_backend(cfg) as (shared, backend):
        for w in range(args.windows):
            nice = 19 if args.renice and w % 2 else 0
            procs = snapshot()
            if args.renice:
                renice([p for p in procs if p != me and role(p, procs, me) in RAY_ROLES], nice)
            a, s0, t0 = snapshot(), shared.counter.value, time.perf_counter()
            while time.perf_counter() - t0 < 5.0:
                backend.poll(timeout=0.2)
            b, s1, t1 = snapshot(), shared.counter.value, time.perf_counter()
            wcpu = sum(b[p][1] - a.get(p, b[p])[1] for p in b if role(p, b, me).startswith("Hogwild"))
            by_nice[nice].append((s1 - s0) / wcpu)
            print(f"window {w} (Ray's processes at nice {nice:2d}): {(s1 - s0) / (t1 - t0):,.0f} steps/s, "
                  f"workers {wcpu / (t1 - t0):.3f} cores, {(s1 - s0) / wcpu:,.0f} steps/worker-CPU-s", flush=True)
    for nice, v in by_nice.items():
        if v:
            print(f"nice {nice}: median {statistics.median(v):,.0f} steps/worker-CPU-s over {len(v)} windows")


if __name__ == "__main__":
    main()
