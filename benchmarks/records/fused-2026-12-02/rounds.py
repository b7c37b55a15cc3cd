"""Trainer ÷ raw ceiling of the same vector stepper, 2 workers, LunarLander-v3, in interleaved rounds,
with the kernel floor of floor.py in the same rounds. Each round measures, each in fresh processes:
the EnvPool ceiling, the trainer on it, the floor loop on it (learn-shared), the Gymnasium ceiling and
the trainer on it. Every trainer/floor row is divided by the ceiling of its own round and stepper.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/records/fused-2026-12-02/rounds.py ROUNDS SECONDS OUT.json
"""

from __future__ import annotations

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from floor import N_PARAMS, SPAWN, measure  # noqa: E402

from asyncdqn.bench.throughput import measure_ceiling, measure_trainer  # noqa: E402
from asyncdqn.config import resolve_config  # noqa: E402

ENV, WORKERS = "LunarLander-v3", 2


def main() -> None:
    rounds, seconds, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    rows: list[dict] = []
    init = (np.random.default_rng(0).standard_normal(N_PARAMS) * 0.05).astype(np.float32)
    for r in range(rounds):
        for vector in ("envpool", "gymnasium"):
            cfg = resolve_config({"env_id": ENV, "workers": WORKERS, "max_steps": 10**12, "progress": False,
                                  "vector": vector})
            ceiling = measure_ceiling(ENV, WORKERS, cfg.envs_per_worker, seconds, vector=vector)
            c_rate = ceiling.steps / ceiling.seconds
            m = measure_trainer(cfg, seconds)
            results = {"trainer": m.steps / m.seconds}
            if vector == "envpool":
                shared = [SPAWN.RawArray("f", N_PARAMS) for _ in range(3)]
                np.frombuffer(shared[0], dtype=np.float32)[:] = init
                results["floor"] = measure("learn-shared", seconds, shared)
            for what, rate in results.items():
                rows.append({"round": r, "vector": vector, "what": what, "ceiling_steps_per_s": c_rate,
                             "steps_per_s": rate, "ratio": rate / c_rate})
            print(f"round {r} {vector:9s} ceiling {c_rate:8,.0f} " +
                  " ".join(f"{w} {v:8,.0f} = {v / c_rate:.1%}" for w, v in results.items()), flush=True)
    summary = {}
    for vector, what in (("envpool", "trainer"), ("envpool", "floor"), ("gymnasium", "trainer")):
        rs = [x["ratio"] for x in rows if x["vector"] == vector and x["what"] == what]
        summary[f"{vector} {what}"] = {"median": statistics.median(rs), "min": min(rs), "max": max(rs), "n": len(rs)}
        print(f"{vector:9s} {what:7s} median {statistics.median(rs):.1%} (min {min(rs):.1%}, max {max(rs):.1%}, "
              f"n={len(rs)})")
    with open(out, "w") as f:
        json.dump({"rounds": rows, "summary": summary, "seconds": seconds, "workers": WORKERS, "env": ENV}, f,
                  indent=1)


if __name__ == "__main__":
    main()
