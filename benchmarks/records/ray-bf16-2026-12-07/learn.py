"""CartPole-v1 on a simulated 2-node Ray cluster (ray.cluster_utils.Cluster, one CPU per node, one node
group each), the settings of tests/backends/test_ray.py's 2-node CartPole tests (2 workers, 300k steps,
a greedy 10-episode evaluation every 25k steps), with float32 exchanges (--ray-compress none) and with
bf16 ones, for the seeds given: does bf16 change learning? Each run's config.json and eval.json are
copied to --keep/<compress>-seed<N>/.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 python benchmarks/records/ray-bf16-2026-12-07/learn.py \
        --seeds 1 2 --out /tmp/ray-bf16-learn --keep benchmarks/records/ray-bf16-2026-12-07/learn
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from asyncdqn import train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--compress", nargs="+", default=["none", "bf16"])
    ap.add_argument("--max-steps", type=int, default=300_000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ray-bf16-learn"))
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    results: dict[str, Any] = {}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        c.add_node(num_cpus=1)
        c.wait_for_nodes()
        ray.init(address=c.address, log_to_driver=False, logging_level="WARNING")
        for seed in args.seeds:
            for compress in args.compress:
                key = f"{compress}-seed{seed}"
                run = args.out / key
                r = train({"env_id": "CartPole-v1", "backend": "ray", "workers": 2, "seed": seed,
                           "max_steps": args.max_steps, "ray_compress": compress, "max_seconds": None,
                           "solve_score": None, "eval_every_steps": 25_000, "eval_episodes": 10,
                           "progress": False, "run_dir": str(run)})
                stats = json.loads((run / "eval.json").read_text())["backend_stats"]
                results[key] = {"best_eval_mean": r.best_eval["mean"] if r.best_eval else None,
                                "final_eval_mean": r.final_eval["mean"], "steps": r.total_steps,
                                "wall_s": r.wall_time_s, "exchanges": stats["exchanges"],
                                "bytes_per_exchange": stats["bytes_per_exchange"],
                                "target_syncs": stats["target_syncs"]}
                print(key, json.dumps(results[key]), flush=True)
                if args.keep is not None:
                    (args.keep / key).mkdir(parents=True, exist_ok=True)
                    for f in ("config.json", "eval.json"):
                        shutil.copy(run / f, args.keep / key / f)
    finally:
        ray.shutdown()
        c.shutdown()
    (args.out / "learn.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
