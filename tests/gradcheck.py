"""Shared test checks for the Q-network engines (tests/ is on sys.path, see conftest.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn


def autograd_loss_and_grads(model: nn.Module, x: np.ndarray, a: np.ndarray, y: np.ndarray,
                            kind: str) -> tuple[float, list[np.ndarray]]:
    """torch autograd's mean TD loss of Q(x, a) against targets y (`td_loss`, huber or mse) and its
    gradient, one array per parameter in model.parameters() order: the reference the hand-written
    gradients are checked against."""
    from asyncdqn.algo.targets import td_loss

    model.zero_grad()
    q = model(torch.from_numpy(x)).gather(1, torch.from_numpy(a).view(-1, 1)).squeeze(1)
    loss = td_loss(q, torch.from_numpy(y), kind)
    loss.backward()
    return float(loss.detach()), [p.grad.numpy().copy() for p in model.parameters()]


def assert_central_differences(model: nn.Module, obs: np.ndarray, actions: np.ndarray, targets: np.ndarray,
                               loss: str, grads: Sequence[Any], per_param: int, abs_tol: float) -> int:
    """Each of up to `per_param` entries per parameter of `grads` (arrays or tensors, in
    model.parameters() order) equals the central difference (step 1e-6) of the torch module's mean TD
    loss (huber delta 1 or mse, computed here in numpy), within rel 1e-4 / `abs_tol`. Use float64
    models. Returns how many entries were checked."""
    rows = np.arange(len(actions))

    def loss_at() -> float:
        with torch.no_grad():
            q = model(torch.from_numpy(obs)).numpy()[rows, actions]
        d = q - targets
        if loss == "mse":
            return float(np.mean(d * d))
        a = np.abs(d)
        return float(np.mean(np.where(a < 1.0, 0.5 * d * d, a - 0.5)))

    h = 1e-6
    checked = 0
    for p, g in zip(model.parameters(), grads, strict=True):
        flat = p.data.view(-1)
        g_flat = np.asarray(g).reshape(-1)
        for i in np.random.default_rng(1).choice(flat.numel(), size=min(per_param, flat.numel()), replace=False):
            old = float(flat[i])
            flat[i] = old + h
            up = loss_at()
            flat[i] = old - h
            down = loss_at()
            flat[i] = old
            assert (up - down) / (2 * h) == pytest.approx(float(g_flat[i]), rel=1e-4, abs=abs_tol)
            checked += 1
    return checked
