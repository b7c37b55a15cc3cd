"""Raw stepping speed of one process: GymnasiumStepper vs EnvPoolStepper (sync) vs EnvPool async
(batch_size = K/2), random actions, interleaved rounds; wall and process CPU time.

Usage: python stepper_micro.py [--env LunarLander-v3] [--k 8] [--seconds 2] [--rounds 3]
"""
import argparse, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
from asyncdqn.envs.vector import make_stepper

ap = argparse.ArgumentParser()
ap.add_argument("--env", default="LunarLander-v3")
ap.add_argument("--k", type=int, default=8)
ap.add_argument("--seconds", type=float, default=2.0)
ap.add_argument("--rounds", type=int, default=3)
a = ap.parse_args()


def run_stepper(vector):
    s = make_stepper(vector, a.env, list(range(a.k)))
    s.reset()
    rng = np.random.default_rng(0)
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < a.seconds:
        for _ in range(50):
            s.step(rng.integers(0, s.n_actions, a.k))
        n += 50 * a.k
    w, c = time.perf_counter() - t0, time.process_time() - c0
    s.close()
    return n / w, c / w


def run_async():
    import envpool
    b = a.k // 2
    pool = envpool.make(a.env, env_type="gymnasium", num_envs=a.k, batch_size=b, num_threads=1, seed=list(range(a.k)))
    pool.async_reset()
    rng = np.random.default_rng(0)
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < a.seconds:
        for _ in range(50):
            obs, rew, term, trunc, info = pool.recv()
            pool.send(rng.integers(0, 4, b).astype(np.int32), info["env_id"])
        n += 50 * b
    w, c = time.perf_counter() - t0, time.process_time() - c0
    pool.close()
    return n / w, c / w


for r in range(a.rounds):
    for name, fn in (("gymnasium", lambda: run_stepper("gymnasium")), ("envpool-sync", lambda: run_stepper("envpool")),
                     ("envpool-async", run_async)):
        sps, cpu = fn()
        print(f"round {r} {name:14s} {sps:9,.0f} steps/s  cpu/wall {cpu:.2f}", flush=True)
