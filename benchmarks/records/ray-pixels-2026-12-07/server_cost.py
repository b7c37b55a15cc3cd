"""The parameter server's cost per exchange, isolated: a ParameterServer actor (the class the ray backend
runs) on a private Ray with the backend's system config, one client making back-to-back exchanges with a
random delta of P float32 (no target, no moments: the common exchange). Per network size: the server
process's CPU per exchange (Ray's threads included: process_time), the client's round trip, the bytes.
Also the numpy cost, in this process, of what a bf16 delta would add on the server (decoding P bf16 to
float32) and take off the wire (2P bytes up instead of 4P).

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 python benchmarks/records/ray-pixels-2026-12-07/server_cost.py \
        --exchanges 300 --out server_cost.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray

from asyncdqn.backends.ray import RAY_SYSTEM_CONFIG
from asyncdqn.backends.ray_server import ParameterServer, ServerInit
from asyncdqn.config import resolve_config

NETS = {"mlp-lunarlander-128x128": 18_180, "minatar": 132_566, "atari": 677_686}


def bf16_decode_ms(p: int, reps: int = 50) -> float:
    """float32 from bf16 bits (uint16): the upper half of each float32, the way a server would widen them."""
    bits = (np.random.default_rng(0).standard_normal(p).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    out = np.empty(p, np.float32)
    t = time.process_time()
    for _ in range(reps):
        np.left_shift(bits.astype(np.uint32), 16, out=out.view(np.uint32))
    return 1e3 * (time.process_time() - t) / reps


def measure(p: int, exchanges: int) -> dict[str, Any]:
    cfg = resolve_config({"env_id": "CartPole-v1", "backend": "ray", "workers": 2, "max_steps": 10**12})
    w = np.random.default_rng(1).standard_normal(p).astype(np.float32)
    init = ServerInit(weights=w, target=w.copy(), target_syncs=1, last_sync_step=0,
                      optim={"step": np.zeros(1, np.int64)}, total=0, per_worker=[0, 0])
    server = ray.remote(num_cpus=0)(ParameterServer).remote(cfg, init, 2)
    ray.get(server.hello.remote(0, 0, 0, 1))
    delta = np.full(p, 1e-6, np.float32)
    msg = {"delta": delta, "steps": 1, "first": 0, "per_worker": [1], "episodes": [], "restarts": [],
           "updates": 1, "moments": None, "target_version": 0}
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
    return {"params": p, "exchanges": n,
            "bytes_per_exchange": (s1["bytes_in"] + s1["bytes_out"] - s0["bytes_in"] - s0["bytes_out"]) / n,
            "server_cpu_ms_per_exchange": 1e3 * (s1["server_cpu_s"] - s0["server_cpu_s"]) / n,
            "round_trip_ms": 1e3 * wall / n, "bf16_decode_ms": bf16_decode_ms(p)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--exchanges", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("server_cost.json"))
    args = ap.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level="WARNING", _system_config=RAY_SYSTEM_CONFIG)
    rows = {}
    try:
        for name, p in NETS.items():
            rows[name] = measure(p, args.exchanges)
            print(name, json.dumps(rows[name]), flush=True)
    finally:
        ray.shutdown()
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
