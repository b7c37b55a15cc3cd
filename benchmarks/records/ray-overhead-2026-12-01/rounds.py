"""Ray (one node) against the process backend, round-robin on the same cores, with the code of
two commits side by side: each measurement is a fresh subprocess running one backend of one
source tree on LunarLander-v3 (2 workers, the preset's 8 envs each), measured 2 s after every
worker counted its first steps, for SECONDS, while the driver polls as the trainer does (0.2 s).

    .venv/bin/python benchmarks/records/ray-overhead-2026-12-01/rounds.py ROUNDS SECONDS OUT.json \
        NAME=SRC_DIR:BACKEND [NAME=SRC_DIR:BACKEND ...]

e.g. before=/tmp/src-84cd340:ray after=src:ray process=src:process (SRC_DIR: a `src/` tree,
`git archive 84cd340 src | tar -x -C /tmp/old` gives /tmp/old/src). Reports steps/s and steps per
CPU-second of the run's whole process tree, per round and the medians of the per-round ratios to
the first `process` entry.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

# The child is run under each source tree, so its start/settle/window loop is written out here, not
# taken from bench.throughput (measure_trainer's polling changed between the trees compared).
ONE = r'''
import json, os, sys, time
from asyncdqn.backends import make_backend
from asyncdqn.backends.shared import build_shared
from asyncdqn.bench.throughput import tree_cpu_seconds as tree_cpu  # in both trees (84cd340 on)
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env

backend_name, seconds = sys.argv[1], float(sys.argv[2])
cfg = resolve_config({"env_id": "LunarLander-v3", "workers": 2, "max_steps": 10**12, "progress": False,
                      "backend": backend_name})
shared = build_shared(cfg, inspect_env(cfg.env_id))
shared.target.sync_from(shared.model, 0)
backend = make_backend(cfg, shared)
backend.start()
try:
    while min(shared.counter.per_worker()) == 0:
        backend.poll(timeout=0.05)
    t = time.perf_counter()
    while time.perf_counter() - t < 2.0:
        backend.poll(timeout=0.2)
    s0, t0, c0 = shared.counter.value, time.perf_counter(), tree_cpu(os.getpid())
    while time.perf_counter() - t0 < seconds:
        backend.poll(timeout=0.2)
    s1, t1, c1 = shared.counter.value, time.perf_counter(), tree_cpu(os.getpid())
    stats = (backend.stats() if hasattr(backend, "stats") else None) or {}
finally:
    backend.stop()
print("RESULT " + json.dumps({"steps": s1 - s0, "seconds": t1 - t0, "cpu_seconds": c1 - c0,
                              "exchanges": stats.get("exchanges"), "target_syncs": stats.get("target_syncs")}))
'''


def main() -> None:
    rounds, seconds, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    entries = [(a.split("=", 1)[0], *a.split("=", 1)[1].rsplit(":", 1)) for a in sys.argv[4:]]
    rows: list[dict[str, object]] = []
    for r in range(rounds):
        for name, src, backend in entries:
            env = {**os.environ, "PYTHONPATH": os.path.abspath(src), "OMP_NUM_THREADS": "1"}
            proc = subprocess.run([sys.executable, "-c", ONE, backend, str(seconds)], env=env, cwd="/tmp",
                                  capture_output=True, text=True, timeout=600)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(proc.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{name} failed in round {r}")
            m = json.loads(line[7:])
            m.update(round=r, name=name, src=src, backend=backend, steps_per_s=m["steps"] / m["seconds"],
                     steps_per_cpu_s=m["steps"] / m["cpu_seconds"])
            rows.append(m)
            print(f"round {r} {name:10s} {m['steps_per_s']:>9,.0f} steps/s {m['steps_per_cpu_s']:>9,.0f} steps/CPU-s "
                  f"exchanges {m['exchanges']} target syncs {m['target_syncs']}", flush=True)
    ref = next(n for n, _, b in entries if b == "process")
    summary: dict[str, dict[str, object]] = {}

    def ratios(name: str, key: str) -> list[float]:
        def one(r: int, n: str) -> float:
            return float(next(x for x in rows if x["round"] == r and x["name"] == n)[key])  # type: ignore[arg-type]
        return [one(r, name) / one(r, ref) for r in range(rounds)]

    for name, _, _ in entries:
        wall, cpu = ratios(name, "steps_per_s"), ratios(name, "steps_per_cpu_s")
        summary[name] = {"median_wall_ratio": statistics.median(wall), "median_cpu_ratio": statistics.median(cpu),
                         "wall_ratios": wall, "cpu_ratios": cpu}
        print(f"{name:10s} ÷ {ref}: steps/s median {statistics.median(wall):.1%} {[f'{w:.1%}' for w in wall]}; "
              f"per CPU-s median {statistics.median(cpu):.1%}")
    with open(out, "w") as f:
        json.dump({"rounds": rows, "summary": summary, "seconds": seconds, "reference": ref}, f, indent=1)


if __name__ == "__main__":
    main()
