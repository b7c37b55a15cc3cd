"""CPU time of one shared Adam step on the LunarLander preset's network, with the parameters in one
flat buffer (the layout `share_training` gives every backend now) against separate tensors (what a
ray node group had before d287894). The gradient is one flat buffer in both, as the numpy engines
hand it over; denormals are flushed as in the process workers.

    .venv/bin/python benchmarks/records/ray-sole-2026-12-01/optim_flat.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

from asyncdqn.backends.shared import make_optimizer
from asyncdqn.config import resolve_config
from asyncdqn.model import build_model, flatten_parameters


def step_us(cfg: object, flat: bool, steps: int = 3000) -> float:
    model = build_model(8, 4, cfg.hidden_sizes, 0)  # type: ignore[attr-defined]
    if flat:
        flatten_parameters(model)
    model.share_memory()
    opt = make_optimizer(cfg, model)  # type: ignore[arg-type]
    params = list(model.parameters())
    grad = torch.zeros(sum(p.numel() for p in params))
    offset = 0
    for p in params:
        p.grad = grad[offset:offset + p.numel()].view(p.shape)
        offset += p.numel()
    grad.numpy()[:] = np.random.default_rng(0).standard_normal(grad.numel()).astype(np.float32) * 1e-3
    for _ in range(200):
        opt.step(1e-4)
    t = time.process_time()
    for _ in range(steps):
        opt.step(1e-4)
    return (time.process_time() - t) / steps * 1e6


def main() -> None:
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    cfg = resolve_config({"env_id": "LunarLander-v3", "workers": 2, "max_steps": 10**9})
    for _ in range(3):
        print(f"flat {step_us(cfg, True):.1f} us per step, per-tensor {step_us(cfg, False):.1f} us per step")


if __name__ == "__main__":
    main()
