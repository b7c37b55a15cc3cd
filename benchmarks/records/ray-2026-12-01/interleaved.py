"""Interleaved throughput (env steps per wall second, and per CPU-second of the whole
process tree: workers, trainer, Ray daemons and actors): process, ray (node groups, 1 node),
ray (2 simulated nodes) and the previous per-worker ray mode, each in a fresh subprocess,
round-robin, REPS times, 2 s after every worker has counted its first steps, on the same
2 cores. The machine was shared with other agents' jobs: compare within a round, quote medians
of per-round ratios.

usage: python interleaved.py ENV REPS SECONDS OLD_SRC OUT.json
  OLD_SRC: src/ of the commit before this change (per-worker mode), e.g. from `git archive efbd3a5 src`;
           "-" to leave that mode out
"""

import inspect
import json
import os
import statistics
import subprocess
import sys

from asyncdqn.bench.throughput import tree_cpu_seconds

ONE = r'''
import json, os, sys, time
from pathlib import Path
try:
    from asyncdqn.backends.shared import build_shared
except ImportError:  # the previous layout (per-worker mode)
    from asyncdqn.trainer import build_shared
from asyncdqn.backends import make_backend
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env


def run(cfg, seconds):
    shared = build_shared(cfg, inspect_env(cfg.env_id))
    shared.target.sync_from(shared.model, 0)
    backend = make_backend(cfg, shared)
    backend.start()
    try:
        while min(shared.counter.per_worker()) == 0:
            backend.poll(timeout=0.05)
        settle = time.perf_counter()
        while time.perf_counter() - settle < 2.0:  # start-up transients (Ray's idle workers) pass
            backend.poll(timeout=0.05)
        s0, t0, c0 = shared.counter.value, time.perf_counter(), tree_cpu_seconds(os.getpid())
        while time.perf_counter() - t0 < seconds:
            backend.poll(timeout=0.05)
        s1, t1, c1 = shared.counter.value, time.perf_counter(), tree_cpu_seconds(os.getpid())
    finally:
        backend.stop()
    return {"steps": s1 - s0, "seconds": t1 - t0, "cpu_seconds": c1 - c0}

if __name__ == "__main__":
    env, backend, nodes, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    cfg = resolve_config({"env_id": env, "workers": 2, "max_steps": 10**12, "progress": False, "backend": backend})
    if nodes > 1:
        from asyncdqn.bench.throughput import simulated_cluster
        with simulated_cluster(nodes, 2):
            r = run(cfg, seconds)
    else:
        r = run(cfg, seconds)
    print("RESULT", json.dumps(r))
'''


# The child runs under either source tree, so it carries its own start/settle/window loop (the same
# code for both trees) and takes the library's tree_cpu_seconds as source (the older tree lacks it).
CHILD = ONE.replace("def run(cfg, seconds):", inspect.getsource(tree_cpu_seconds) + "\n\ndef run(cfg, seconds):", 1)


def measure(env: str, backend: str, nodes: int, seconds: float, src: str | None) -> dict[str, float]:
    env_vars = dict(os.environ)
    if src:
        env_vars["PYTHONPATH"] = src
    out = subprocess.run([sys.executable, "-c", CHILD, env, backend, str(nodes), str(seconds)], capture_output=True,
                         text=True, env=env_vars, timeout=600)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(out.stderr[-2000:])
    r = json.loads(line[len("RESULT"):])
    return {"steps_per_s": r["steps"] / r["seconds"], "steps_per_cpu_s": r["steps"] / r["cpu_seconds"], **r}


def main() -> None:
    env, reps, seconds, old_src, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
    variants = {"process": ("process", 1, None), "ray-groups-1node": ("ray", 1, None),
                "ray-groups-2nodes": ("ray", 2, None)}
    if old_src != "-":  # "-": skip the previous mode
        variants["ray-per-worker-old"] = ("ray", 1, old_src)
    rounds = []
    for rep in range(reps):
        row = {name: measure(env, b, n, seconds, src) for name, (b, n, src) in variants.items()}
        rounds.append(row)
        print(rep, {k: (round(v["steps_per_s"]), round(v["steps_per_cpu_s"])) for k, v in row.items()}, flush=True)
    summary = {}
    for k in variants:
        if k == "process":
            continue
        wall = [r[k]["steps_per_s"] / r["process"]["steps_per_s"] for r in rounds]
        cpu = [r[k]["steps_per_cpu_s"] / r["process"]["steps_per_cpu_s"] for r in rounds]
        summary[k] = {"median_wall_ratio_to_process": statistics.median(wall), "wall_ratios": wall,
                      "median_cpu_ratio_to_process": statistics.median(cpu), "cpu_ratios": cpu}
    with open(out, "w") as f:
        json.dump({"env": env, "workers": 2, "seconds": seconds, "rounds": rounds, "summary": summary,
                   "loadavg_at_end": os.getloadavg()}, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
