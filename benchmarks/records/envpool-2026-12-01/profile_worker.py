"""Profile one ActorLearner in-process (serial shared objects): cProfile + time split.

Usage: OMP_NUM_THREADS=1 python profile_worker.py [--vector gymnasium|envpool] [--seconds 8]
"""
import argparse, cProfile, pstats, time, io, os
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch
torch.set_num_threads(1)
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.backends.shared import build_shared
from asyncdqn.backends.base import ListSink
from asyncdqn.learners.async_q import ActorLearner

ap = argparse.ArgumentParser()
ap.add_argument("--vector", default=None)
ap.add_argument("--seconds", type=float, default=8.0)
ap.add_argument("--no-profile", action="store_true")
a = ap.parse_args()
over = {"env_id": "LunarLander-v3", "workers": 1, "max_steps": 10**12, "progress": False}
if a.vector:
    over["vector"] = a.vector
cfg = resolve_config(over)
spec = inspect_env(cfg.env_id)
shared = build_shared(cfg, spec)
shared.target.sync_from(shared.model, 0)
w = ActorLearner(cfg, 0, shared.model, shared.optimizer, shared.target, shared.counter, ListSink())
for _ in range(200):
    w.run_segment()
t0 = time.perf_counter(); n = 0
while time.perf_counter() - t0 < 2.0:
    n += w.run_segment()
print(f"unprofiled: {n / (time.perf_counter() - t0):,.0f} steps/s")
if not a.no_profile:
    pr = cProfile.Profile()
    pr.enable()
    t0 = time.perf_counter(); n = 0
    while time.perf_counter() - t0 < a.seconds:
        n += w.run_segment()
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(30)
    print(s.getvalue())
