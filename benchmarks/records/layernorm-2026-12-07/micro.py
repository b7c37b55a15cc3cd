"""Per-call cost of LayerNorm in the numpy engines (measured under load: provisional).

MinAtar Breakout's net (4 channels, 3 actions) on the numpy conv engine: forward on 16 rows (a
worker's acting batch) and loss_and_grads on 80 rows (5 steps x 16 envs); LunarLander's MLP
(8-128-128-4) on the numpy MLP engine: forward on 8 rows, loss_and_grads on 40. Interleaved
rounds, median per call. Run: PYTHONPATH=src OMP_NUM_THREADS=1 python micro.py"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from asyncdqn.learners.engines import NumpyConvEngine, NumpyMLPEngine
from asyncdqn.model import MinAtarQNetwork, QNetwork


def per_call_us(fn, reps: int = 200) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps * 1e6


def main() -> None:
    rng = np.random.default_rng(0)
    img = ((rng.random((80, 4, 10, 10)) < 0.2) * 255).astype(np.uint8)
    vec = rng.normal(size=(40, 8)).astype(np.float32)
    a80, y80 = rng.integers(0, 3, 80), rng.normal(size=80).astype(np.float32)
    a40, y40 = rng.integers(0, 4, 40), rng.normal(size=40).astype(np.float32)
    cases = {}
    for ln in (False, True):
        conv = NumpyConvEngine(MinAtarQNetwork((4, 10, 10), 3, layer_norm=ln))
        mlp = NumpyMLPEngine(QNetwork(8, 4, (128, 128), layer_norm=ln))
        tag = "ln" if ln else "plain"
        cases[f"conv forward 16 rows {tag}"] = lambda e=conv: e.online(img[:16])
        cases[f"conv loss_and_grads 80 rows {tag}"] = lambda e=conv: e.loss_and_grads(img, a80, y80, "huber")
        cases[f"mlp forward 8 rows {tag}"] = lambda e=mlp: e.online(vec[:8])
        cases[f"mlp loss_and_grads 40 rows {tag}"] = lambda e=mlp: e.loss_and_grads(vec, a40, y40, "huber")
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(7):  # interleaved rounds
        for name, fn in cases.items():
            samples[name].append(per_call_us(fn))
    out = {k: float(np.median(v)) for k, v in samples.items()}
    for k, v in out.items():
        print(f"{k:<40} {v:9.1f} us")
    print(json.dumps({"median_us": out, "load_average": list(os.getloadavg())}))


if __name__ == "__main__":
    main()
