"""Per-call cost of the two conv engines (learners/engines.py): torch (no-grad forward, autograd)
vs numpy (algo/conv_grad.py), on the networks the learner builds.

    OMP_NUM_THREADS=1 python benchmarks/records/numpy-conv-2026-12-01/micro.py [--atari]

Per network: one forward on K=8 rows (`engine.online`, acting), `loss_and_grads` on T*K=40 rows
and the same plus `attach_grads(40.0)` (the clipping step of every update). Each figure is the
best of `ROUNDS` rounds of N calls, torch and numpy alternating round by round so that the load
of a shared machine falls on both alike; the load average is printed with the results.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from asyncdqn.learners.engines import NumpyConvEngine, TorchEngine
from asyncdqn.model import build_network

ROUNDS = 7


def best_us(fns: dict[str, Callable[[], object]], n: int) -> dict[str, float]:
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            fn()  # warm
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / n * 1e6)
    return best


Engine = TorchEngine | NumpyConvEngine


def measure(label: str, kind: str, shape: tuple[int, int, int], n_actions: int, n: int) -> None:
    net = build_network(kind, shape, n_actions, (), seed=0)
    engines: dict[str, Engine] = {"torch": TorchEngine(net), "numpy": NumpyConvEngine(net)}
    rng = np.random.default_rng(0)
    obs8 = ((rng.random((8, *shape)) < 0.1) * 255).astype(np.uint8)  # MinAtar-like: {0, 255}, sparse
    obs40 = ((rng.random((40, *shape)) < 0.1) * 255).astype(np.uint8)
    actions = rng.integers(0, n_actions, size=40)
    y = rng.normal(size=40).astype(np.float32)

    def forward(e: Engine) -> object:
        return e.online(obs8)

    def loss(e: Engine) -> object:
        return e.loss_and_grads(obs40, actions, y, "huber")

    def learn(e: Engine) -> object:
        value = e.loss_and_grads(obs40, actions, y, "huber")
        e.attach_grads(40.0)
        return value

    calls: list[tuple[str, Callable[[Engine], object], int]] = [
        ("forward, 8 rows", forward, n),
        ("loss_and_grads, 40 rows", loss, max(1, n // 4)),
        ("+ attach_grads(clip 40)", learn, max(1, n // 4)),
    ]
    for name, call, reps in calls:
        t = best_us({k: functools.partial(call, e) for k, e in engines.items()}, reps)
        print(f"{label:18} {name:28} {t['torch']:9.1f} {t['numpy']:9.1f} {t['torch'] / t['numpy']:6.2f}")


def main() -> None:
    torch.set_num_threads(1)
    nets = [("MinAtar Breakout", "minatar", (4, 10, 10), 3, 200),
            ("MinAtar Seaquest", "minatar", (10, 10, 10), 6, 200)]
    if "--atari" in sys.argv:
        nets.append(("Atari (Pong)", "atari", (4, 84, 84), 6, 8))
    print(f"load average before: {os.getloadavg()}")
    print(f"{'network':18} {'call':28} {'torch us':>9} {'numpy us':>9} {'ratio':>6}")
    for net in nets:
        measure(*net)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
