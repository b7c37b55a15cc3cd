"""CPU time (process_time, robust to a shared machine) of each part of one worker segment.

Usage: OMP_NUM_THREADS=1 python learner_parts.py [--set k=v ...]
"""
import argparse, json, os, time, warnings
os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")
import numpy as np
import torch
torch.set_num_threads(1)
if os.environ.get("FTZ"):
    torch.set_flush_denormal(True)
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.backends.shared import build_shared
from asyncdqn.backends.base import ListSink
from asyncdqn.learners.async_q import ActorLearner

ap = argparse.ArgumentParser()
ap.add_argument("--vector", default="gymnasium")
ap.add_argument("--set", action="append", default=[])
a = ap.parse_args()
over = {"env_id": "LunarLander-v3", "workers": 1, "max_steps": 10**12, "progress": False, "vector": a.vector}
for kv in a.set:
    k, v = kv.split("=", 1)
    over[k] = json.loads(v)
cfg = resolve_config(over)
shared = build_shared(cfg, inspect_env(cfg.env_id))
shared.target.sync_from(shared.model, 0)
w = ActorLearner(cfg, 0, shared.model, shared.optimizer, shared.target, shared.counter, ListSink())
for _ in range(50):
    w.run_segment()
T, K = w.T, w.K


def cpu(fn, n=2000):
    fn()
    c0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - c0) / n * 1e6


obs = w.obs.copy()
parts = {
    "env step (K envs, stepper)": (cpu(lambda: w.envs.step(w.rng.integers(0, w.n_actions, K)), 500), T),
    "act: forward K rows": (cpu(lambda: w.online(obs)), T),
    "act: eps-greedy (drawn)": (cpu(lambda: w._act_drawn(obs, 0)) - cpu(lambda: w.online(obs)), T),
    "targets (target fwd + n-step)": (cpu(w.targets), 1),
    "td_loss_and_grads": (0.0, 1),
    "optimizer.step": (cpu(lambda: w.optimizer.step(cfg.lr)), 1),
    "counter.add": (cpu(lambda: w.counter.add(0, 0)), 1),
    "whole segment": (cpu(w.run_segment, 300), 1),
}
from asyncdqn.algo.mlp_grad import td_loss_and_grads
y = w.targets().reshape(-1)
x = w.obs_buf.reshape(T * K, -1)
acts = w.act_buf.reshape(-1)
parts["td_loss_and_grads"] = (cpu(lambda: td_loss_and_grads(w._weights, w._biases, x, acts, y, cfg.loss,
                                                              w._grad_arrays[0::2], w._grad_arrays[1::2])), 1)
print(f"T={T} K={K} hidden={cfg.hidden_sizes} vector={cfg.vector}")
env_total = parts["env step (K envs, stepper)"][0] * T
for name, (us, times) in parts.items():
    print(f"{name:32s} {us:8.1f} us x{times:<2d} = {us * times:8.1f} us/segment")
seg = parts["whole segment"][0]
print(f"ratio bound (env / whole segment) = {env_total / seg:.1%}; non-env {seg - env_total:.0f} us/segment")
