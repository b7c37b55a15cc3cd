"""Raw EnvPool stepping (LunarLander-v3, 8 envs per process, random actions, the worker's stepper)
on 2 processes, with and without pinning each process (its Python thread and EnvPool's C++ thread)
to one core, alternating. Usage: python envpool_affinity.py ROUNDS SECONDS"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np


def stepper(i: int, pin: bool, counter, stop) -> None:
    if pin:
        os.sched_setaffinity(0, {i % os.cpu_count()})
    from asyncdqn.envs.vector import make_stepper

    s = make_stepper("envpool", "LunarLander-v3", [i * 1000 + k for k in range(8)], None, None)
    s.reset()
    rng = np.random.default_rng(i)
    n = 0
    while not stop.is_set():
        for _ in range(50):
            s.step(rng.integers(0, 4, size=8))
        n += 400
        counter[i] = n


def measure(pin: bool, seconds: float) -> float:
    ctx = mp.get_context("spawn")
    counter, stop = ctx.Array("q", 2, lock=False), ctx.Event()
    procs = [ctx.Process(target=stepper, args=(i, pin, counter, stop), daemon=True) for i in range(2)]
    for p in procs:
        p.start()
    while min(counter) == 0:
        time.sleep(0.05)
    time.sleep(1.0)
    s0, t0 = sum(counter), time.perf_counter()
    time.sleep(seconds)
    rate = (sum(counter) - s0) / (time.perf_counter() - t0)
    stop.set()
    for p in procs:
        p.join(5)
    return rate


if __name__ == "__main__":
    rounds, seconds = int(sys.argv[1]), float(sys.argv[2])
    res: dict[bool, list[float]] = {False: [], True: []}
    for r in range(rounds):
        for pin in (False, True):
            res[pin].append(measure(pin, seconds))
            print(f"round {r} pinned={pin}: {res[pin][-1]:,.0f} steps/s", flush=True)
    for pin in (False, True):
        print(f"pinned={pin}: median {statistics.median(res[pin]):,.0f} (min {min(res[pin]):,.0f}, max {max(res[pin]):,.0f})")
