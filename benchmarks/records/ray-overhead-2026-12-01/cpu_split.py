"""Where a one-node ray run's CPU goes: per-process CPU seconds over a window, by role.

    .venv/bin/python benchmarks/records/ray-overhead-2026-12-01/cpu_split.py [--backend ray|process]
        [--seconds 10] [--workers 2] [--set ray_sync_seconds=0.1 ...]

Starts the trainer's backend on LunarLander-v3 with `bench.throughput.settled_backend` (as
`bench throughput` does: learning from every transition, no evaluation; the recorded logs had a
3 s settle of this script's own, now the library's 2 s), then reads /proc for every process on
the machine at the window's start and end and sums CPU (user + system) by role: Hogwild workers,
the node group actor, the parameter server actor, the driver (this process), Ray's daemons
(raylet, gcs_server, ...), and everything else (other jobs: should be ~0 on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def snapshot() -> dict[int, tuple[str, float, int]]:
    """pid -> (command line, CPU seconds so far, parent pid) for every process on the machine."""
    out: dict[int, tuple[str, float, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        name = cmd or stat[stat.find("(") + 1:stat.rfind(")")]
        out[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / TICKS, int(fields[1]))
    return out


def role(pid: int, procs: dict[int, tuple[str, float, int]], me: int) -> str:
    cmd, _, parent = procs[pid]
    if pid == me:
        return "driver (this process)"
    if "ParameterServer" in cmd:
        return "parameter server actor"
    if "NodeGroup" in cmd:
        return "node group actor"
    if "spawn_main" in cmd and (parent == me or "NodeGroup" in procs.get(parent, ("", 0.0, 0))[0]):
        return "Hogwild workers (this run's)"
    if "spawn_main" in cmd and parent != 1 and "resource_tracker" not in cmd:
        return "other (spawned by another job)"
    for daemon in ("raylet", "gcs_server", "dashboard", "log_monitor", "monitor.py", "runtime_env", "ray::IDLE",
                   "default_worker", "ray/"):
        if daemon in cmd:
            return "ray daemons / idle workers"
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="ray")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--poll", type=float, default=0.2, help="the driver's poll timeout (the trainer's: 0.2)")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides key=value (JSON values)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from asyncdqn.bench.throughput import settled_backend
    from asyncdqn.config import resolve_config

    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = resolve_config({"env_id": "LunarLander-v3", "workers": args.workers, "max_steps": 10**12,
                          "progress": False, "backend": args.backend, **overrides})
    with settled_backend(cfg) as (shared, backend):  # started and settled as `bench throughput` does
        a, s0, t0 = snapshot(), shared.counter.value, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            backend.poll(timeout=args.poll)
        b, s1, t1 = snapshot(), shared.counter.value, time.perf_counter()
        stats = getattr(backend, "last_stats", {})
    me, wall = os.getpid(), t1 - t0
    by_role: dict[str, float] = {}
    for pid, (cmd, cpu, _) in b.items():
        used = cpu - a.get(pid, (cmd, 0.0, 0))[1]
        if used > 0:
            r = role(pid, b, me)
            by_role[r] = by_role.get(r, 0.0) + used
    total = sum(by_role.values())
    print(f"backend {args.backend}, {args.workers} workers, {wall:.1f} s: {(s1 - s0) / wall:,.0f} steps/s, "
          f"{total / wall:.2f} cores busy; overrides {overrides}")
    for r, cpu in sorted(by_role.items(), key=lambda kv: -kv[1]):
        print(f"  {r:32s} {cpu / wall:6.3f} cores  {100 * cpu / total:5.1f} %")
    if stats:
        print("  backend stats:", {k: v for k, v in stats.items() if not isinstance(v, (list, dict))})


if __name__ == "__main__":
    main()
