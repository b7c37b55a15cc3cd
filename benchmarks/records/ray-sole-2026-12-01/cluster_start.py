"""Start-up against a Ray cluster that is already up: seconds to `backend.start()` returning and to the
first counted step of every worker, process backend vs ray joining a one-node cluster (CartPole-v1,
2 workers), 3 rounds in one cluster.

    .venv/bin/python benchmarks/records/ray-sole-2026-12-01/cluster_start.py plain|preload

`preload` starts the cluster with Ray's `preload_python_modules` = the node group's module (torch and
all), to see whether Ray's workers could have it imported before a run asks for them.
"""

from __future__ import annotations

import sys
import time


def one(address: str | None) -> tuple[float, float]:
    from asyncdqn.backends import make_backend
    from asyncdqn.backends.base import TRAINER_POLL_S
    from asyncdqn.backends.shared import build_shared
    from asyncdqn.config import resolve_config
    from asyncdqn.envs import inspect_env

    cfg = resolve_config({"env_id": "CartPole-v1", "workers": 2, "max_steps": 10**12, "progress": False,
                          "backend": "ray" if address else "process", "ray_address": address})
    t0 = time.perf_counter()
    shared = build_shared(cfg, inspect_env(cfg.env_id))
    shared.target.sync_from(shared.model, 0)
    backend = make_backend(cfg, shared)
    backend.start()
    started = time.perf_counter() - t0
    try:
        while min(shared.counter.per_worker()) == 0:
            backend.poll(timeout=TRAINER_POLL_S)
        return started, time.perf_counter() - t0
    finally:
        backend.stop()


def main() -> None:
    from ray.cluster_utils import Cluster

    from asyncdqn.backends.ray import RAY_SYSTEM_CONFIG

    conf = dict(RAY_SYSTEM_CONFIG)
    if sys.argv[1] == "preload":
        conf["preload_python_modules"] = ["asyncdqn.backends.ray_group"]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False,
                                                            "_system_config": conf})
    cluster.wait_for_nodes()
    time.sleep(8)  # the cluster's own start-up is over before any run starts
    try:
        for r in range(3):
            for name, address in (("process", None), ("ray-cluster", str(cluster.address))):
                started, first = one(address)
                print(f"{sys.argv[1]} round {r} {name:11s} start returned {started:.2f} s; every worker "
                      f"stepped {first:.2f} s", flush=True)
            time.sleep(3)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
