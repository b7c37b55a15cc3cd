"""Interleaved throughput: process, ray (node groups, 1 node), ray (2 simulated nodes) and the
previous per-worker ray mode, each in a fresh subprocess, round-robin, REPS times, on the same
2 cores. The machine was shared with other agents' jobs: compare within a round, quote medians
of per-round ratios.

usage: python interleaved.py ENV REPS SECONDS OLD_SRC OUT.json
  OLD_SRC: src/ of the commit before this change (per-worker mode), e.g. from `git archive efbd3a5 src`
"""

import json
import os
import statistics
import subprocess
import sys

ONE = r'''
import json, sys
from asyncdqn.bench import measure_trainer
from asyncdqn.config import resolve_config
if __name__ == "__main__":
    env, backend, nodes, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    cfg = resolve_config({"env_id": env, "workers": 2, "max_steps": 10**12, "progress": False, "backend": backend})
    m = measure_trainer(cfg, seconds, nodes) if nodes > 1 else measure_trainer(cfg, seconds)
    print("RESULT", json.dumps({"steps": m.steps, "seconds": m.seconds}))
'''


def measure(env: str, backend: str, nodes: int, seconds: float, src: str | None) -> float:
    env_vars = dict(os.environ)
    if src:
        env_vars["PYTHONPATH"] = src
    out = subprocess.run([sys.executable, "-c", ONE, env, backend, str(nodes), str(seconds)], capture_output=True,
                         text=True, env=env_vars, timeout=600)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(out.stderr[-2000:])
    r = json.loads(line[len("RESULT"):])
    return r["steps"] / r["seconds"]


def main() -> None:
    env, reps, seconds, old_src, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
    variants = {"process": ("process", 1, None), "ray-groups-1node": ("ray", 1, None),
                "ray-groups-2nodes": ("ray", 2, None), "ray-per-worker-old": ("ray", 1, old_src)}
    rounds = []
    for rep in range(reps):
        row = {name: measure(env, b, n, seconds, src) for name, (b, n, src) in variants.items()}
        rounds.append(row)
        print(rep, {k: round(v) for k, v in row.items()}, flush=True)
    ratios = {k: [r[k] / r["process"] for r in rounds] for k in variants if k != "process"}
    summary = {k: {"median_ratio_to_process": statistics.median(v), "ratios": v} for k, v in ratios.items()}
    with open(out, "w") as f:
        json.dump({"env": env, "workers": 2, "seconds": seconds, "rounds": rounds, "summary": summary,
                   "loadavg_at_end": os.getloadavg()}, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
