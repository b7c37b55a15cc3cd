"""The trainer against the raw ceiling of the same vector stepper, 2 workers, in interleaved rounds
(`bench throughput` measures each row once, in sequence, and this VM drifts by more than the effect
between rows). Each round measures, in this order and each in fresh processes: the Gymnasium ceiling,
the trainer on it (--jit, and --no-jit if asked), the EnvPool ceiling, the trainer on it; every
trainer row is divided by the ceiling of its own round and stepper.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/records/learner-jit-2026-12-01/rounds.py ROUNDS SECONDS OUT.json [nojit]
"""

from __future__ import annotations

import json
import statistics
import sys

from asyncdqn.bench.throughput import measure_ceiling, measure_trainer
from asyncdqn.config import resolve_config

ENV, WORKERS = "LunarLander-v3", 2


def main() -> None:
    rounds, seconds, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    jits = (True, False) if "nojit" in sys.argv[4:] else (True,)
    rows: list[dict] = []
    for r in range(rounds):
        for vector in ("gymnasium", "envpool"):
            cfg0 = resolve_config({"env_id": ENV, "workers": WORKERS, "max_steps": 10**12, "progress": False,
                                   "vector": vector})
            ceiling = measure_ceiling(ENV, WORKERS, cfg0.envs_per_worker, seconds, vector=vector)
            c_rate = ceiling.steps / ceiling.seconds
            c_cpu = ceiling.steps / ceiling.cpu_seconds
            for jit in jits:
                cfg = resolve_config({"env_id": ENV, "workers": WORKERS, "max_steps": 10**12, "progress": False,
                                      "vector": vector, "jit": jit})
                m = measure_trainer(cfg, seconds)
                row = {"round": r, "vector": vector, "jit": jit, "ceiling_steps_per_s": c_rate,
                       "trainer_steps_per_s": m.steps / m.seconds, "ratio": m.steps / m.seconds / c_rate,
                       "ratio_per_cpu_s": (m.steps / m.cpu_seconds) / c_cpu}
                rows.append(row)
                print(f"round {r} {vector:9s} {'jit' if jit else 'nojit':5s} ceiling {c_rate:8,.0f} trainer "
                      f"{row['trainer_steps_per_s']:8,.0f} = {row['ratio']:.1%} (per CPU-s {row['ratio_per_cpu_s']:.1%})",
                      flush=True)
    summary = {}
    for vector in ("gymnasium", "envpool"):
        for jit in jits:
            rs = [x["ratio"] for x in rows if x["vector"] == vector and x["jit"] == jit]
            key = f"{vector} {'jit' if jit else 'nojit'}"
            summary[key] = {"median": statistics.median(rs), "min": min(rs), "max": max(rs), "n": len(rs)}
            print(f"{key:16s} median {statistics.median(rs):.1%} (min {min(rs):.1%}, max {max(rs):.1%}, n={len(rs)})")
    with open(out, "w") as f:
        json.dump({"rounds": rows, "summary": summary, "seconds": seconds, "workers": WORKERS, "env": ENV}, f, indent=1)


if __name__ == "__main__":
    main()
