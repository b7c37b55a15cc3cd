"""Contention-robust development check: steps per CPU-second of one in-process worker
(ActorLearner, serial shared objects) vs the same vector stepper stepping random actions,
alternating rounds. Ratio = trainer / ceiling (per CPU second of this process).

Usage: OMP_NUM_THREADS=1 python cpu_ratio.py [--vector gymnasium|envpool] [--rounds 3] [--seconds 3] [--set k=v ...]
"""
import argparse, json, os, time, warnings
os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")
import numpy as np
import torch
torch.set_num_threads(1)
torch.set_flush_denormal(True)  # as in a process-backend worker
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.backends.shared import build_shared
from asyncdqn.backends.base import ListSink
from asyncdqn.learners.async_q import ActorLearner
from asyncdqn.envs.vector import make_stepper

ap = argparse.ArgumentParser()
ap.add_argument("--vector", default="gymnasium")
ap.add_argument("--env", default="LunarLander-v3")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--seconds", type=float, default=3.0)
ap.add_argument("--set", action="append", default=[])
a = ap.parse_args()
over = {"env_id": a.env, "workers": 1, "max_steps": 10**12, "progress": False, "vector": a.vector}
for kv in a.set:
    k, v = kv.split("=", 1)
    over[k] = json.loads(v)
cfg = resolve_config(over)
K = cfg.envs_per_worker


def ceiling():
    s = make_stepper(cfg.vector, cfg.env_id, list(range(K)))
    s.reset()
    rng = np.random.default_rng(0)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < a.seconds:
        for _ in range(50):
            s.step(rng.integers(0, s.n_actions, K))
        n += 50 * K
    s.close()
    return n / (time.process_time() - c0)


shared = build_shared(cfg, inspect_env(cfg.env_id))
shared.target.sync_from(shared.model, 0)
w = ActorLearner(cfg, 0, shared.model, shared.optimizer, shared.target, shared.counter, ListSink())
for _ in range(100):
    w.run_segment()


def trainer():
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < a.seconds:
        n += w.run_segment()
    return n / (time.process_time() - c0)


ratios = []
for r in range(a.rounds):
    c, t = ceiling(), trainer()
    ratios.append(t / c)
    print(f"round {r}: ceiling {c:,.0f} steps/cpu-s  trainer {t:,.0f}  ratio {t / c:.1%}", flush=True)
print(f"median ratio {np.median(ratios):.1%}")
