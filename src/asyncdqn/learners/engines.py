"""Network engines: how a learner evaluates and differentiates its Q-network.

A learner (worker.ActorLearner, dqn.DQNLearner) needs four things from its network:
Q-values of the live shared weights (acting, double-Q), Q-values of its local
target copy (bootstrapping), that copy's arrays (refreshed by TargetStore.read_into),
and the TD loss's gradient attached to the shared parameters for the optimizer.

- `NumpyMLPEngine` (MLPs, vector observations): numpy forward over views of the shared
  weights and the hand-written backprop of algo/mlp_grad.py, ~4x cheaper than autograd
  at these sizes. The fast path of every vector task.
- `TorchEngine` (any other module, e.g. the conv nets of model.py): torch forward and
  autograd. Its target copy is a local module whose parameter arrays are numpy views,
  so the same TargetStore.read_into fills it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import nn

from asyncdqn.algo.mlp_grad import clip_grad_norm, td_loss_and_grads
from asyncdqn.algo.targets import td_loss
from asyncdqn.model import NumpyMLP, QNetwork, TorchQ


class Engine(Protocol):
    online: Callable[[np.ndarray], np.ndarray]  # Q-values of the live shared weights, no gradient
    target: Callable[[np.ndarray], np.ndarray]  # Q-values of the local target copy
    target_arrays: list[np.ndarray]  # the local target copy's parameters, in model.parameters() order

    def loss_and_grads(self, obs: np.ndarray, actions: np.ndarray, targets: np.ndarray, loss: str) -> float: ...
    def attach_grads(self, grad_clip: float | None) -> None: ...


class NumpyMLPEngine:
    """Numpy forward and hand-written backprop of a QNetwork (MLP)."""

    def __init__(self, model: QNetwork) -> None:
        self.online = NumpyMLP.view_of(model)  # acting reads the shared weights in place
        # Weights are views of the shared parameters; gradients live in this learner's own
        # tensors, handed to the optimizer as p.grad.
        self._params = list(model.parameters())
        self._weights = [p.detach().numpy() for p in self._params[0::2]]
        self._biases = [p.detach().numpy() for p in self._params[1::2]]
        # One flat gradient buffer (views per parameter): clipped with one dot product, and with
        # the flat parameters of backends/shared.py the optimizer updates everything in one pass.
        self._grad_flat = torch.zeros(sum(p.numel() for p in self._params), dtype=self._params[0].dtype)
        self._grad_tensors, offset = [], 0
        for p in self._params:
            self._grad_tensors.append(self._grad_flat[offset:offset + p.numel()].view(p.shape))
            offset += p.numel()
        self._grad_arrays = [g.numpy() for g in self._grad_tensors]
        self._grad_flat_np = self._grad_flat.numpy()
        self.target_arrays = [p.detach().numpy().copy() for p in self._params]
        self.target = NumpyMLP(self.target_arrays)

    def loss_and_grads(self, obs: np.ndarray, actions: np.ndarray, targets: np.ndarray, loss: str) -> float:
        """Mean TD loss of Q(obs, actions) on the shared weights; its gradient kept for attach_grads."""
        return td_loss_and_grads(self._weights, self._biases, obs, actions, targets, loss,
                                 self._grad_arrays[0::2], self._grad_arrays[1::2])

    def attach_grads(self, grad_clip: float | None) -> None:
        """Clip the gradient's global norm and hand it to the optimizer (p.grad)."""
        if grad_clip is not None:
            clip_grad_norm([self._grad_flat_np], grad_clip)
        if self._params[0].grad is not self._grad_tensors[0]:  # set once: .grad checks cost us each
            for p, g in zip(self._params, self._grad_tensors, strict=True):
                p.grad = g


class TorchEngine:
    """Torch forward and autograd of any Q-network module (the conv nets)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.online = TorchQ(model)  # no_grad forward of the live shared weights
        self._params = list(model.parameters())
        self._target_model = copy.deepcopy(model)  # local, not shared: refreshed via target_arrays
        for p in self._target_model.parameters():
            p.requires_grad_(False)
        self.target_arrays = [p.detach().numpy() for p in self._target_model.parameters()]
        self.target = TorchQ(self._target_model)

    def loss_and_grads(self, obs: np.ndarray, actions: np.ndarray, targets: np.ndarray, loss: str) -> float:
        """Mean TD loss of Q(obs, actions) on the shared weights; backward into p.grad."""
        for p in self._params:
            p.grad = None
        x = torch.from_numpy(np.ascontiguousarray(obs))
        a = torch.from_numpy(np.ascontiguousarray(actions, dtype=np.int64)).unsqueeze(1)
        y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        value = td_loss(self.model(x).gather(1, a).squeeze(1), y, loss)
        value.backward()  # type: ignore[no-untyped-call]
        return float(value.detach())

    def attach_grads(self, grad_clip: float | None) -> None:
        """Clip the gradient's global norm (the same rule as the MLP engine); p.grad is already set."""
        if grad_clip is not None:
            clip_grad_norm([p.grad.numpy() for p in self._params if p.grad is not None], grad_clip)


def make_engine(model: nn.Module) -> NumpyMLPEngine | TorchEngine:
    """The numpy engine for MLPs, torch for everything else."""
    return NumpyMLPEngine(model) if isinstance(model, QNetwork) else TorchEngine(model)
