"""Exchange costs inside real runs of the ray backend on pixels: MinAtar/Breakout-v1 (MinAtar net) and
ALE/Pong-v5 (the paper's Atari net), 2 workers, on one node and on a simulated 2-node cluster
(ray.cluster_utils, one CPU per node), each for a fixed number of env steps. From eval.json's
backend_stats: exchanges per group per second, bytes per exchange, CPU per exchange of the server
process (its polls by the driver included) and of each group process (workers excluded).

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 python benchmarks/records/ray-pixels-2026-12-07/exchange_cost.py \
        --out exchange_cost.json --nodes 1 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from asyncdqn import train
from asyncdqn.bench.throughput import simulated_cluster

RUNS = {"MinAtar/Breakout-v1": 150_000, "ALE/Pong-v5": 15_000}


def one(env_id: str, steps: int, nodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        opts = {"env_id": env_id, "backend": "ray", "workers": 2, "max_steps": steps, "max_seconds": None,
                "solve_score": None, "eval_every_steps": None, "eval_episodes": 1, "max_episode_steps": 2000,
                "progress": False, "checkpoint_every": None, "run_dir": str(Path(tmp) / "run")}
        if nodes > 1:
            with simulated_cluster(nodes, 2):
                r = train(opts)
        else:
            r = train(opts)
    st = r.backend_stats or {}
    n = st["exchanges"]
    return {"env_id": env_id, "nodes": nodes, "total_steps": r.total_steps, "wall_time_s": r.wall_time_s,
            "steps_per_s": r.total_steps / r.wall_time_s, **st,
            "exchanges_per_group_per_s": {g: k / r.wall_time_s for g, k in st["exchanges_per_group"].items()},
            "server_cpu_ms_per_exchange": 1e3 * st["server_cpu_s"] / n,
            "group_cpu_ms_per_exchange": {g: 1e3 * c / st["exchanges_per_group"][g]
                                          for g, c in st["group_cpu_s"].items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("exchange_cost.json"))
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--envs", nargs="+", default=list(RUNS))
    args = ap.parse_args()
    rows = []
    for env_id in args.envs:
        for n in args.nodes:
            r = one(env_id, RUNS[env_id], n)
            rows.append(r)
            args.out.write_text(json.dumps(rows, indent=1))
            print(json.dumps({k: r[k] for k in ("env_id", "nodes", "total_steps", "wall_time_s", "exchanges",
                                                 "bytes_per_exchange", "exchanges_per_group_per_s",
                                                 "server_cpu_ms_per_exchange", "group_cpu_ms_per_exchange")}),
                  flush=True)


if __name__ == "__main__":
    main()
