"""What --ray-compress bf16 costs and saves per exchange, float32 against bf16, for the MLP
(LunarLander 128x128), MinAtar and Atari nets' sizes:

- in this process, no Ray (`--exchanges N`): a ParameterServer (2 groups planned) and one node group's
  GroupLink, N plain exchanges (a small random delta each, no target, no moments): the bytes the
  server's counters record, the pickled size of the message and the reply (what Ray ships), the numpy
  CPU per exchange of the server's `exchange` and of the group's `message` + `apply`;
- with `--ray`: the server as a Ray actor on a private Ray (the backend's system config), one client
  making N back-to-back exchanges: the server process's CPU per exchange (Ray's threads included) and
  the client's round trip (as benchmarks/records/ray-pixels-2026-12-07/server_cost.py, with bf16 too).

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 python benchmarks/records/ray-bf16-2026-12-07/cost.py \
        --exchanges 300 --ray --out benchmarks/records/ray-bf16-2026-12-07/cost.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asyncdqn.algo.bf16 import to_bf16
from asyncdqn.backends.ray_group import GroupLink, build_group_state, network_template
from asyncdqn.backends.ray_server import ParameterServer, ServerInit, flatten
from asyncdqn.backends.shared import share_training
from asyncdqn.config import Config, resolve_config
from asyncdqn.model import build_network

# name -> (network kind, observation shape, actions, hidden sizes); parameters: 18,180 / 132,566 / 677,686
NETS = {"mlp-lunarlander-128x128": ("mlp", (8,), 4, (128, 128)), "minatar": ("minatar", (4, 10, 10), 6, (128,)),
        "atari": ("atari", (4, 84, 84), 6, (256,))}


def _cfg(compress: str) -> Config:
    return resolve_config({"env_id": "CartPole-v1", "backend": "ray", "workers": 2, "max_steps": 10**12,
                           "progress": False, "ray_compress": compress})


def _init(cfg: Config, model: torch.nn.Module) -> ServerInit:
    s = share_training(cfg, model)
    params = [p.detach().numpy() for p in s.model.parameters()]
    return ServerInit(weights=flatten(params), target=flatten(params), target_syncs=1, last_sync_step=0,
                      optim={k: v.numpy() for k, v in s.optimizer.state_tensors().items()}, total=0,
                      per_worker=[0, 0])


def in_process(name: str, compress: str, exchanges: int) -> dict[str, Any]:
    kind, shape, actions, hidden = NETS[name]
    cfg = _cfg(compress)
    model = build_network(kind, shape, actions, hidden, seed=0)
    server = ParameterServer(cfg, _init(cfg, model), 2)
    hello = server.hello(0, 0, 0, 1)
    shared = build_group_state(cfg, network_template(model), hello)
    link = GroupLink(shared, range(0, 1), hello, cfg.target_update_steps)
    link.last_moments = float("inf")  # plain exchanges: no moments
    params = [p.detach().numpy() for p in shared.model.parameters()]
    rng = np.random.default_rng(0)
    steps = [[(rng.standard_normal(p.shape) * 1e-4).astype(np.float32) for p in params] for _ in range(8)]
    server_s = group_s = 0.0
    msg_bytes = reply_bytes = 0
    for i in range(exchanges):
        for p, d in zip(params, steps[i % 8], strict=True):
            p += d
        t0 = time.process_time()
        msg = link.message([], [], final=False)
        t1 = time.process_time()
        reply = server.exchange(0, 0, msg)
        t2 = time.process_time()
        link.apply(reply)
        t3 = time.process_time()
        server_s += t2 - t1
        group_s += (t1 - t0) + (t3 - t2)
        if i == 0:
            msg_bytes = len(pickle.dumps(msg, protocol=5))
            reply_bytes = len(pickle.dumps(reply, protocol=5))
    st = server.stats()
    off = np.abs(flatten(params) - server.master)
    return {"params": int(server.master.size), "compress": compress, "exchanges": st["exchanges"],
            "bytes_in_per_exchange": st["bytes_in"] / st["exchanges"],
            "bytes_out_per_exchange": st["bytes_out"] / st["exchanges"],
            "pickled_message_bytes": msg_bytes, "pickled_reply_bytes": reply_bytes,
            "server_numpy_ms_per_exchange": 1e3 * server_s / exchanges,
            "group_numpy_ms_per_exchange": 1e3 * group_s / exchanges,
            "group_minus_master_max_abs_after": float(off.max())}


def with_ray(name: str, compress: str, exchanges: int) -> dict[str, Any]:
    import ray

    kind, shape, actions, hidden = NETS[name]
    cfg = _cfg(compress)
    model = build_network(kind, shape, actions, hidden, seed=0)
    server = ray.remote(num_cpus=0)(ParameterServer).remote(cfg, _init(cfg, model), 2)
    ray.get(server.hello.remote(0, 0, 0, 1))
    p = sum(int(q.numel()) for q in model.parameters())
    delta = np.full(p, 1e-6, np.float32)
    msg: dict[str, Any] = {"steps": 1, "first": 0, "per_worker": [1], "episodes": [], "restarts": [], "updates": 1,
                           "moments": None, "target_version": 0}
    msg.update({"delta_bf16": to_bf16(delta)} if compress == "bf16" else {"delta": delta})
    for _ in range(20):  # warm up
        ray.get(server.exchange.remote(0, 0, msg))
    s0 = ray.get(server.stats.remote())
    t0 = time.perf_counter()
    for _ in range(exchanges):
        ray.get(server.exchange.remote(0, 0, msg))
    wall = time.perf_counter() - t0
    s1 = ray.get(server.stats.remote())
    ray.kill(server)
    n = s1["exchanges"] - s0["exchanges"]
    return {"params": p, "compress": compress, "exchanges": n,
            "bytes_per_exchange": (s1["bytes_in"] + s1["bytes_out"] - s0["bytes_in"] - s0["bytes_out"]) / n,
            "server_cpu_ms_per_exchange": 1e3 * (s1["server_cpu_s"] - s0["server_cpu_s"]) / n,
            "round_trip_ms": 1e3 * wall / n}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--exchanges", type=int, default=300)
    ap.add_argument("--ray", action="store_true", help="also measure the server as a Ray actor")
    ap.add_argument("--out", type=Path, default=Path("cost.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows: dict[str, Any] = {}
    for name in NETS:
        for compress in ("none", "bf16"):
            rows[f"in_process/{name}/{compress}"] = r = in_process(name, compress, args.exchanges)
            print(f"in_process/{name}/{compress}", json.dumps(r), flush=True)
    if args.ray:
        import ray

        from asyncdqn.backends.ray import RAY_SYSTEM_CONFIG

        ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False, logging_level="WARNING", _system_config=RAY_SYSTEM_CONFIG)
        try:
            for name in NETS:
                for compress in ("none", "bf16"):
                    rows[f"ray/{name}/{compress}"] = r = with_ray(name, compress, args.exchanges)
                    print(f"ray/{name}/{compress}", json.dumps(r), flush=True)
        finally:
            ray.shutdown()
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
