"""Exchange costs of the ray backend: exchanges per second per group, bytes per exchange, CPU
seconds per exchange in the parameter server and in a group process (workers excluded), on one
node and on a simulated 2-node cluster (ray.cluster_utils), LunarLander-v3, 2 workers.

usage: python exchange_cost.py STEPS OUT.json [NODES...]   (default nodes: 1 2; the machine was shared)
"""

import json
import sys
import tempfile
from pathlib import Path

from asyncdqn import train
from asyncdqn.bench.throughput import simulated_cluster


def one(nodes: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        opts = {"env_id": "LunarLander-v3", "backend": "ray", "workers": 2, "max_steps": steps, "max_seconds": None,
                "solve_score": None, "eval_every_steps": None, "eval_episodes": 1, "progress": False,
                "checkpoint_every": None, "run_dir": str(Path(tmp) / "run")}
        if nodes > 1:
            with simulated_cluster(nodes, 2):
                r = train(opts)
        else:
            r = train(opts)
    st = r.backend_stats or {}
    n = st["exchanges"]
    return {"nodes": nodes, "total_steps": r.total_steps, "wall_time_s": r.wall_time_s, **st,
            "exchanges_per_group_per_s": {g: k / r.wall_time_s for g, k in st["exchanges_per_group"].items()},
            "server_cpu_ms_per_exchange": 1e3 * st["server_cpu_s"] / n,
            "group_cpu_ms_per_exchange": {g: 1e3 * c / st["exchanges_per_group"][g]
                                          for g, c in st["group_cpu_s"].items()}}


if __name__ == "__main__":
    steps, out, nodes = int(sys.argv[1]), sys.argv[2], [int(n) for n in sys.argv[3:]] or [1, 2]
    rows = []
    for n in nodes:
        r = one(n, steps)
        rows.append(r)
        Path(out).write_text(json.dumps(rows, indent=1))
        print(json.dumps({k: r[k] for k in ("nodes", "total_steps", "wall_time_s", "exchanges", "bytes_per_exchange",
                                             "exchanges_per_group_per_s", "server_cpu_ms_per_exchange",
                                             "group_cpu_ms_per_exchange", "target_syncs")}), flush=True)
