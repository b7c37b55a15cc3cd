"""Network engines: how a learner evaluates and differentiates its Q-network.

A learner (worker.ActorLearner, dqn.DQNLearner) needs four things from its network:
Q-values of the live shared weights (acting, double-Q), Q-values of its local
target copy (bootstrapping), that copy's arrays (refreshed by TargetStore.read_into),
and the TD loss's gradient attached to the shared parameters for the optimizer.

- `NumpyMLPEngine` (MLPs, vector observations): numpy forward over views of the shared
  weights and the hand-written backprop of algo/mlp_grad.py, ~4x cheaper than autograd
  at these sizes. The fast path of every vector task.
- `JitMLPEngine` (the same MLPs when their parameters are one flat shared buffer, as every
  worker's are, and --jit, the default): the same math as compiled kernels (algo/mlp_kernels.py), acting
  (forward + epsilon-greedy) in one call, the whole TD gradient in one call.
- `NumpyConvEngine` (the MinAtar conv net): the same for a ConvQNetwork, im2col + matrix
  products and hand-written backprop (algo/conv_grad.py). Measured against torch on the
  MinAtar net: ~2x cheaper per forward on 8 rows, ~1.3-1.6x per loss_and_grads on 40
  (benchmarks/records/numpy-conv-2026-12-01/).
- `TorchEngine` (any other module, e.g. the paper's Atari net, where the convolutions'
  arithmetic dominates and torch's conv kernels beat im2col: numpy measured 0.5x / 0.8x
  there): torch forward and autograd. Its target copy is a local module whose parameter
  arrays are numpy views, so the same TargetStore.read_into fills it.

The numpy engines keep the gradient in one flat buffer handed over as p.grad, so the shared
optimizer's flat path (algo/optim.py) updates all parameters in one pass.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import nn

from asyncdqn.algo.conv_grad import NumpyConvQ
from asyncdqn.algo.exploration import epsilon_greedy_drawn
from asyncdqn.algo.mlp_grad import LN_EPS, clip_grad_norm, split_mlp_arrays, td_loss_and_grads
from asyncdqn.algo.optim import flat_of, split_flat
from asyncdqn.algo.targets import td_loss
from asyncdqn.model import ConvQNetwork, MinAtarQNetwork, NumpyMLP, QNetwork, TorchQ


class Engine(Protocol):
    online: Callable[[np.ndarray], np.ndarray]  # Q-values of the live shared weights, no gradient
    target: Callable[[np.ndarray], np.ndarray]  # Q-values of the local target copy
    target_arrays: list[np.ndarray]  # the local target copy's parameters, in model.parameters() order

    def act_drawn(self, obs: np.ndarray, eps: np.ndarray, uniforms: np.ndarray,
                  random_actions: np.ndarray) -> np.ndarray: ...
    def loss_and_grads(self, obs: np.ndarray, actions: np.ndarray, targets: np.ndarray, loss: str) -> float: ...
    def attach_grads(self, grad_clip: float | None, scale: float = 1.0) -> None: ...


class _Acting:
    """Epsilon-greedy acting on the live weights from pre-drawn randomness (exploration.py's rule)."""

    online: Callable[[np.ndarray], np.ndarray]

    def act_drawn(self, obs: np.ndarray, eps: np.ndarray, uniforms: np.ndarray,
                  random_actions: np.ndarray) -> np.ndarray:
        """Row k takes random_actions[k] iff uniforms[k] < eps[k], else its greedy action."""
        return epsilon_greedy_drawn(self.online(obs), eps, uniforms, random_actions)


class _FlatGrads(_Acting):
    """One flat gradient buffer (views per parameter) for the numpy engines: clipped with one dot
    product, and with the flat parameters of backends/shared.py the optimizer updates everything
    in one pass. The gradients live in this learner's own tensors, handed over as p.grad."""

    def __init__(self, params: list[nn.Parameter]) -> None:
        self._params = params
        self._grad_flat = torch.zeros(sum(p.numel() for p in params), dtype=params[0].dtype)
        self._grad_tensors = split_flat(self._grad_flat, params)
        self._grad_arrays = [g.numpy() for g in self._grad_tensors]
        self.grad_flat = self._grad_flat.numpy()

    def attach_grads(self, grad_clip: float | None, scale: float = 1.0) -> None:
        """Scale the mean gradient (`scale` = rows: their sum), clip its global norm and hand it to the
        optimizer (p.grad)."""
        self._scale_and_clip(grad_clip, scale)
        self.hand_over_grads()

    def hand_over_grads(self) -> None:
        """Set the flat gradient buffer's views as the parameters' p.grad (once: later calls only check)."""
        if self._params[0].grad is not self._grad_tensors[0]:  # set once: .grad checks cost us each
            for p, g in zip(self._params, self._grad_tensors, strict=True):
                p.grad = g

    def _scale_and_clip(self, grad_clip: float | None, scale: float) -> None:
        if scale != 1.0:
            self.grad_flat *= scale
        if grad_clip is not None:
            clip_grad_norm([self.grad_flat], grad_clip)


class NumpyMLPEngine(_FlatGrads):
    """Numpy forward and hand-written backprop of a QNetwork (MLP)."""

    def __init__(self, model: QNetwork) -> None:
        super().__init__(list(model.parameters()))
        self.online = NumpyMLP.view_of(model)  # acting reads the shared weights in place
        # Weights are views of the shared parameters.
        ln = model.layer_norm
        self._weights, self._biases, self._norms = split_mlp_arrays([p.detach().numpy() for p in self._params], ln)
        self._grad_w, self._grad_b, self._grad_norms = split_mlp_arrays(self._grad_arrays, ln)
        self.target_arrays = [p.detach().numpy().copy() for p in self._params]
        self.target = NumpyMLP(self.target_arrays, ln)

    def loss_and_grads(self, obs: np.ndarray, actions: np.ndarray, targets: np.ndarray, loss: str) -> float:
        """Mean TD loss of Q(obs, actions) on the shared weights; its gradient kept for attach_grads."""
        return td_loss_and_grads(self._weights, self._biases, obs, actions, targets, loss,
                                 self._grad_w, self._grad_b, self._norms, self._grad_norms)


def _plain_norm(m: nn.Module, layer_norm: bool) -> bool:
    """Is `m` not a LayerNorm, or one algo/conv_grad.py computes (learnable gain and shift, eps LN_EPS),
    in a network built with layer_norm?"""
    if not isinstance(m, nn.LayerNorm):
        return True
    return layer_norm and m.elementwise_affine and m.bias is not None and m.eps == LN_EPS


def conv_strides(model: nn.Module) -> list[tuple[int, int]] | None:
    """(sh, sw) per conv layer if `model` is a ConvQNetwork that algo/conv_grad.py computes exactly
    (plain valid convolutions, ReLU after each layer, LayerNorm before each ReLU iff
    model.layer_norm); else None."""
    if not isinstance(model, ConvQNetwork):
        return None
    ln = model.layer_norm
    strides: list[tuple[int, int]] = []
    for m in model.features:
        if isinstance(m, nn.Conv2d):
            if (m.padding != (0, 0) or m.dilation != (1, 1) or m.groups != 1 or m.bias is None
                    or m.padding_mode != "zeros"):
                return None
            strides.append((int(m.stride[0]), int(m.stride[1])))
        elif not isinstance(m, nn.ReLU | nn.Flatten | nn.LayerNorm) or not _plain_norm(m, ln):
            return None
    if not all(isinstance(m, nn.ReLU) or (isinstance(m, nn.Linear) and m.bias is not None)
               or (isinstance(m, nn.LayerNorm) and _plain_norm(m, ln)) for m in model.head):
        return None
    n_norms = sum(isinstance(m, nn.LayerNorm) for m in model.modules())
    if n_norms != (len(strides) + 1 if ln else 0):  # one per conv layer and one in the head
        return None
    return strides or None


class NumpyConvEngine(_FlatGrads):
    """Numpy forward (im2col + matrix products) and hand-written backprop of a ConvQNetwork."""

    def __init__(self, model: ConvQNetwork) -> None:
        strides = conv_strides(model)
        if strides is None:
            raise ValueError(f"{type(model).__name__} is not a plain ConvQNetwork (see conv_strides)")
        super().__init__(list(model.parameters()))
        # Acting and the loss read the shared weights in place (views); the target copy is local.
        self._conv = NumpyConvQ([p.detach().numpy() for p in self._params], strides, model.layer_norm)
        self.online = self._conv
        self.target_arrays = [p.detach().numpy().copy() for p in self._params]
        self.target = NumpyConvQ(self.target_arrays, strides, model.layer_norm)

    def loss_and_grads(self, obs: np.ndarray, actions: np.ndarray, targets: np.ndarray, loss: str) -> float:
        """Mean TD loss of Q(obs, actions) on the shared weights; its gradient kept for attach_grads."""
        return self._conv.loss_and_grads(obs, actions, targets, loss, self._grad_arrays)


class _CompiledMLP(_FlatGrads):
    """What both compiled MLP engines share: the kernels over the flat shared parameters (acting,
    the target copy's Q-values, the TD gradient and the clip, one call each). A subclass names its
    forward, acting and gradient kernels and whether its MLP has LayerNorm.

    Needs the parameters to be consecutive views of one buffer (`model.flatten_parameters`, done
    by `backends/shared.share_training` for every worker); `make_engine` checks that."""

    _KERNELS = ("forward", "act_drawn", "td_loss_and_grad")
    _LAYER_NORM = False

    def __init__(self, model: QNetwork, flat: np.ndarray) -> None:
        from asyncdqn.algo import mlp_kernels  # numba: imported only by the learners that use it

        super().__init__(list(model.parameters()))
        self._kernels = mlp_kernels
        self._forward, self._act, self._td = (getattr(mlp_kernels, k) for k in self._KERNELS)
        # What the kernels take, public for a learner that calls them directly (ActorLearner's fused
        # n-step Q path): the shared parameters (a view: acting and the gradient read them in place),
        # the layer sizes, the local target copy (one buffer too); the flat gradient is `grad_flat`.
        self.flat = flat
        weights = split_mlp_arrays([p.detach().numpy() for p in self._params], self._LAYER_NORM)[0]
        self.sizes = mlp_kernels.layer_sizes([tuple(w.shape) for w in weights])
        self.target_flat = flat.copy()
        self.target_arrays = [t.numpy() for t in split_flat(torch.from_numpy(self.target_flat), self._params)]

    def online(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of the live shared weights."""
        q: np.ndarray = self._forward(self.flat, self.sizes, _f32(obs))
        return q

    def target(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of the local target copy."""
        q: np.ndarray = self._forward(self.target_flat, self.sizes, _f32(obs))
        return q

    def act_drawn(self, obs: np.ndarray, eps: np.ndarray, uniforms: np.ndarray,
                  random_actions: np.ndarray) -> np.ndarray:
        """Forward and epsilon-greedy in one compiled call (same rule as `_Acting.act_drawn`)."""
        actions: np.ndarray = self._act(self.flat, self.sizes, _f32(obs), eps, uniforms, random_actions)
        return actions

    def loss_and_grads(self, obs: np.ndarray, actions: np.ndarray, targets: np.ndarray, loss: str) -> float:
        """Mean TD loss of Q(obs, actions) on the shared weights; its gradient kept for attach_grads."""
        if loss not in ("huber", "mse"):
            raise ValueError(f"unknown loss {loss!r}")
        return float(self._td(self.flat, self.sizes, _f32(obs), actions.astype(np.int64, copy=False),
                              targets.astype(np.float32, copy=False), loss == "huber", self.grad_flat))

    def _scale_and_clip(self, grad_clip: float | None, scale: float) -> None:
        """`_FlatGrads._scale_and_clip` in one compiled pass."""
        self._kernels.scale_and_clip(self.grad_flat, np.float32(scale), np.inf if grad_clip is None else grad_clip)


class JitMLPEngine(_CompiledMLP):
    """NumpyMLPEngine's math as compiled kernels (algo/mlp_kernels.py) over the flat shared
    parameters, and the segment's targets in one call each (the n-step Q worker's fused path)."""

    def n_step_targets(self, final_obs: np.ndarray, last_obs: np.ndarray, rewards: np.ndarray,
                       terminated: np.ndarray, done: np.ndarray, gamma: np.float32, double_q: bool,
                       online: bool = False) -> np.ndarray:
        """n-step Q targets of a segment of vector observations (algo/mlp_kernels.n_step_q_targets),
        bootstrapped from the local target copy (and the live weights' argmax with double-Q); `online`:
        from the live weights (no target network)."""
        targets: np.ndarray = self._kernels.n_step_q_targets(self.flat if online else self.target_flat, self.flat,
                                                             self.sizes, final_obs, last_obs, rewards, terminated,
                                                             done, gamma, double_q)
        return targets

    def lambda_targets(self, final_obs: np.ndarray, obs_seq: np.ndarray, rewards: np.ndarray,
                       terminated: np.ndarray, done: np.ndarray, gamma: float, lam: float, double_q: bool,
                       online: bool = False) -> np.ndarray:
        """Q(lambda) targets of a segment of vector observations (algo/mlp_kernels.lambda_q_targets),
        bootstrapped as `n_step_targets`."""
        targets: np.ndarray = self._kernels.lambda_q_targets(self.flat if online else self.target_flat, self.flat,
                                                             self.sizes, final_obs, obs_seq, rewards, terminated,
                                                             done, float(gamma), float(lam), double_q)
        return targets


class JitLayerNormMLPEngine(_CompiledMLP):
    """NumpyMLPEngine's LayerNorm math (--layer-norm) as compiled kernels (algo/mlp_kernels.py's
    *_ln kernels). The n-step targets and the worker's step loop run on the worker's step-by-step
    path (JitMLPEngine's fused path is for MLPs without LayerNorm)."""

    _KERNELS = ("forward_ln", "act_drawn_ln", "td_loss_and_grad_ln")
    _LAYER_NORM = True


def _f32(obs: np.ndarray) -> np.ndarray:
    """Observations as the C-contiguous float32 rows the kernels are compiled for (no copy if they are)."""
    return np.ascontiguousarray(obs, dtype=np.float32)


class TorchEngine(_Acting):
    """Torch forward and autograd of any Q-network module (the Atari net, any other conv net).
    `bf16`: its forward passes under torch.autocast to bfloat16 (--precision bf16)."""

    def __init__(self, model: nn.Module, bf16: bool = False) -> None:
        self.model, self.bf16 = model, bf16
        self.online = TorchQ(model, bf16)  # no_grad forward of the live shared weights
        self._params = list(model.parameters())
        self._target_model = copy.deepcopy(model)  # local, not shared: refreshed via target_arrays
        for p in self._target_model.parameters():
            p.requires_grad_(False)
        self.target_arrays = [p.detach().numpy() for p in self._target_model.parameters()]
        self.target = TorchQ(self._target_model, bf16)

    def loss_and_grads(self, obs: np.ndarray, actions: np.ndarray, targets: np.ndarray, loss: str) -> float:
        """Mean TD loss of Q(obs, actions) on the shared weights; backward into p.grad."""
        for p in self._params:
            p.grad = None
        x = torch.from_numpy(np.ascontiguousarray(obs))
        a = torch.from_numpy(np.ascontiguousarray(actions, dtype=np.int64)).unsqueeze(1)
        y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            q = self.model(x)
        value = td_loss(q.gather(1, a).squeeze(1), y, loss)
        value.backward()  # type: ignore[no-untyped-call]
        return float(value.detach())

    def attach_grads(self, grad_clip: float | None, scale: float = 1.0) -> None:
        """Scale and clip the gradient (the same rules as the numpy engines); p.grad is already set."""
        if scale != 1.0:
            for p in self._params:
                if p.grad is not None:
                    p.grad.mul_(scale)
        if grad_clip is not None:
            clip_grad_norm([p.grad.numpy() for p in self._params if p.grad is not None], grad_clip)


def make_engine(model: nn.Module, jit: bool = False, bf16: bool = False) -> (
        JitMLPEngine | JitLayerNormMLPEngine | NumpyMLPEngine | NumpyConvEngine | TorchEngine):
    """The compiled engine for MLPs whose parameters are one flat buffer (with `jit`; with LayerNorm
    its own kernels), else the numpy engine for MLPs and the MinAtar conv net, torch for everything
    else (the Atari net: numpy's im2col measured slower than torch's conv kernels there). `bf16`
    (--precision bf16) is for the torch engine only: the config refuses it for the others."""
    if bf16 and isinstance(model, (QNetwork, MinAtarQNetwork)):
        raise ValueError("--precision bf16 runs on the torch engine (the Atari nets) only")
    if isinstance(model, QNetwork):
        flat = flat_of(list(model.parameters())) if jit else None
        if flat is not None and flat.dtype == np.float32:
            return JitLayerNormMLPEngine(model, flat) if model.layer_norm else JitMLPEngine(model, flat)
        return NumpyMLPEngine(model)
    if isinstance(model, MinAtarQNetwork) and conv_strides(model) is not None:
        return NumpyConvEngine(model)
    return TorchEngine(model, bf16)
