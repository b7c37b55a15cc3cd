"""MinAtar/Breakout-v1 on a simulated 2-node Ray cluster (ray.cluster_utils.Cluster, one CPU per node,
one node group each), the settings of tests/backends/test_ray_pixels.py's learning test, for several
seeds: sets that test's bar from measured runs. Also plays random actions for the baseline.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 python benchmarks/records/ray-pixels-2026-12-07/seeds.py \
        --seeds 0 1 2 3 4 --max-steps 200000 --out /tmp/ray-pixels-seeds
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import ray
from ray.cluster_utils import Cluster

from asyncdqn import train
from asyncdqn.envs import make_env


def random_play(episodes: int = 300) -> tuple[float, float]:
    env = make_env("MinAtar/Breakout-v1")
    rng = np.random.default_rng(0)
    out = []
    for ep in range(episodes):
        env.reset(seed=ep)
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
            total += float(r)
            done = term or trunc
        out.append(total)
    return float(np.mean(out)), float(np.std(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-steps", type=int, default=200_000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ray-pixels-seeds"))
    args = ap.parse_args()
    results: dict[str, object] = {"random_play_mean_std_300_episodes": random_play()}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        c.add_node(num_cpus=1)
        c.wait_for_nodes()
        ray.init(address=c.address, log_to_driver=False, logging_level="WARNING")
        for seed in args.seeds:
            run = args.out / f"seed{seed}"
            r = train({"env_id": "MinAtar/Breakout-v1", "backend": "ray", "workers": 2, "seed": seed,
                       "max_steps": args.max_steps, "max_seconds": None, "solve_score": None,
                       "eval_every_steps": None, "eval_episodes": 30, "checkpoint_every": None,
                       "progress": False, "run_dir": str(run)})
            stats = json.loads((run / "eval.json").read_text())["backend_stats"]
            results[f"seed{seed}"] = {"final_mean": r.final_eval["mean"], "final_std": r.final_eval["std"],
                                      "steps": r.total_steps, "wall_s": r.wall_time_s, "groups": stats["groups"],
                                      "target_syncs": stats["target_syncs"]}
            print(seed, results[f"seed{seed}"], flush=True)
    finally:
        ray.shutdown()
        c.shutdown()
    print(json.dumps(results, indent=1))
    (args.out / "seeds.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
