"""Q-networks: an MLP in torch for learning, and a numpy mirror for fast acting.

A single-sample torch forward costs ~20 us on this class of CPU, a numpy one
~5 us, so workers act with `NumpyMLP` over numpy *views* of the (shared-memory)
torch parameters: no copy, always the current weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class QNetwork(nn.Module):
    """obs -> hidden -> ... -> one Q-value per action, ReLU between layers."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.n_actions = n_actions
        self.hidden_sizes = tuple(hidden_sizes)
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_actions))
        self.q = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.q(obs)
        return out


def build_model(obs_dim: int, n_actions: int, hidden_sizes: Sequence[int], seed: int) -> QNetwork:
    """A QNetwork initialised from `seed` without touching the global torch RNG."""
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return QNetwork(obs_dim, n_actions, hidden_sizes)
    finally:
        torch.random.set_rng_state(gen_state)


def flatten_parameters(model: nn.Module) -> torch.Tensor:
    """Move `model`'s parameters, in place, into one contiguous buffer (in parameters()
    order) and return it; each parameter becomes a view of it (same values, same
    Parameter objects). Lets the shared optimizer update all of them with one set of
    elementwise ops (algo/optim.py). Call before `model.share_memory()`, which then moves
    the single buffer to shared memory."""
    params = list(model.parameters())
    flat = torch.empty(sum(p.numel() for p in params), dtype=params[0].dtype)
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            view = flat[offset:offset + n].view(p.shape)
            view.copy_(p)
            p.data = view
            offset += n
    return flat


class NumpyMLP:
    """Forward pass of a QNetwork in numpy over a list of (weight, bias) arrays.

    The arrays may be views of torch tensors (shared memory): reading them is
    Hogwild-style, exactly like the torch forward of the shared model.
    """

    def __init__(self, arrays: Sequence[np.ndarray]) -> None:
        if len(arrays) % 2:
            raise ValueError("expected alternating weight and bias arrays")
        self.layers = [(arrays[i].T, arrays[i + 1]) for i in range(0, len(arrays), 2)]

    @classmethod
    def view_of(cls, model: nn.Module) -> NumpyMLP:
        """Zero-copy views of `model`'s parameters (follow its in-place updates)."""
        return cls([p.detach().numpy() for p in model.parameters()])

    @classmethod
    def copy_of(cls, model: nn.Module) -> NumpyMLP:
        """A snapshot: independent copies of `model`'s parameters."""
        return cls([p.detach().numpy().copy() for p in model.parameters()])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        last = len(self.layers) - 1
        for i, (w_t, b) in enumerate(self.layers):
            x = x @ w_t + b
            if i < last:
                np.maximum(x, 0.0, out=x)
        return x
