"""Q-networks: an MLP in torch for learning, and a numpy mirror for fast acting.

A single-sample torch forward costs ~20 us on this class of CPU, a numpy one
~5 us, so workers act with `NumpyMLP` over numpy *views* of the (shared-memory)
torch parameters: no copy, always the current weights.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from asyncdqn.algo import mlp_grad
from asyncdqn.algo.mlp_grad import LN_EPS, split_mlp_arrays


class QNetwork(nn.Module):
    """obs -> hidden -> ... -> one Q-value per action, ReLU between layers.

    With `layer_norm`, every hidden layer is Linear -> LayerNorm (learnable gain and bias) -> ReLU
    (PQN's network); its parameters are then [W, b, gain, bias] per hidden layer, [W, b] last."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: Sequence[int] = (128, 128),
                 layer_norm: bool = False) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.n_actions = n_actions
        self.hidden_sizes = tuple(hidden_sizes)
        self.layer_norm = layer_norm
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), *([nn.LayerNorm(h, eps=LN_EPS)] if layer_norm else []), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_actions))
        self.q = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.q(obs)
        return out


def build_model(obs_dim: int, n_actions: int, hidden_sizes: Sequence[int], seed: int,
                layer_norm: bool = False) -> QNetwork:
    """A QNetwork initialised from `seed` without touching the global torch RNG."""
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return QNetwork(obs_dim, n_actions, hidden_sizes, layer_norm)
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
    """Forward pass of a QNetwork in numpy over its parameter arrays (model.parameters() order):
    (weight, bias) per layer, and with `layer_norm` (weight, bias, gain, shift) per hidden layer.

    The arrays may be views of torch tensors (shared memory): reading them is
    Hogwild-style, exactly like the torch forward of the shared model.
    """

    def __init__(self, arrays: Sequence[np.ndarray], layer_norm: bool = False) -> None:
        weights, biases, self.norms = split_mlp_arrays(arrays, layer_norm)
        self.layers = [(w.T, b) for w, b in zip(weights, biases, strict=True)]

    @classmethod
    def view_of(cls, model: QNetwork) -> NumpyMLP:
        """Zero-copy views of `model`'s parameters (follow its in-place updates)."""
        return cls([p.detach().numpy() for p in model.parameters()], model.layer_norm)

    @classmethod
    def copy_of(cls, model: QNetwork) -> NumpyMLP:
        """A snapshot: independent copies of `model`'s parameters."""
        return cls([p.detach().numpy().copy() for p in model.parameters()], model.layer_norm)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        last = len(self.layers) - 1
        for i, (w_t, b) in enumerate(self.layers):
            x = x @ w_t + b
            if i < last:
                if self.norms:
                    x = mlp_grad.layer_norm(x, *self.norms[i], axis=1)[0]
                np.maximum(x, 0.0, out=x)
        return x


# ---------------------------------------------------------------- image Q-networks
class ConvQNetwork(nn.Module):
    """Convolutions -> ReLU -> fully connected -> one Q-value per action, on (B, C, H, W) images.

    Observations arrive as uint8 (0..255) and are divided by 255 here, so every buffer
    upstream stays uint8. `convs` lists (out_channels, kernel, stride) per layer.
    With `layer_norm`, a LayerNorm (learnable gain and bias) sits before every ReLU: over a conv
    layer's whole (C, H, W) output, as CleanRL's PQN network does, and over the hidden dense layer.
    """

    def __init__(self, obs_shape: Sequence[int], n_actions: int, convs: Sequence[tuple[int, int, int]],
                 hidden: int, layer_norm: bool = False) -> None:
        super().__init__()
        if len(obs_shape) != 3:
            raise ValueError(f"a conv Q-network needs a (C, H, W) observation, got shape {tuple(obs_shape)}")
        self.obs_shape = tuple(int(n) for n in obs_shape)
        self.n_actions = n_actions
        self.layer_norm = layer_norm
        layers: list[nn.Module] = []
        channels, height, width = self.obs_shape
        for out, kernel, stride in convs:
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
            if height < 1 or width < 1:
                raise ValueError(f"images of shape {self.obs_shape} are too small for convolutions {list(convs)}")
            norm = [nn.LayerNorm([out, height, width], eps=LN_EPS)] if layer_norm else []
            layers += [nn.Conv2d(channels, out, kernel, stride), *norm, nn.ReLU()]
            channels = out
        self.features = nn.Sequential(*layers, nn.Flatten())
        flat = channels * height * width
        norm = [nn.LayerNorm(hidden, eps=LN_EPS)] if layer_norm else []
        self.head = nn.Sequential(nn.Linear(flat, hidden), *norm, nn.ReLU(), nn.Linear(hidden, n_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        dtype = next(self.head.parameters()).dtype  # float32 (float64 in the gradient tests)
        hidden = self.head[:-1](self.features(obs.to(dtype) / 255.0))
        with torch.autocast("cpu", enabled=False):  # Q-values in full precision under --precision bf16
            q: torch.Tensor = self.head[-1](hidden.to(dtype))
        return q


class AtariQNetwork(ConvQNetwork):
    """The asynchronous-methods paper's network (Mnih et al. 2013/2016): 16 8x8 stride 4,
    32 4x4 stride 2, fully connected 256; for (4, 84, 84) frame stacks."""

    def __init__(self, obs_shape: Sequence[int], n_actions: int, layer_norm: bool = False) -> None:
        super().__init__(obs_shape, n_actions, ((16, 8, 4), (32, 4, 2)), 256, layer_norm)


class NatureQNetwork(ConvQNetwork):
    """The Nature DQN network (Mnih et al. 2015; PQN's too): 32 8x8 stride 4, 64 4x4 stride 2,
    64 3x3 stride 1, fully connected 512; for (4, 84, 84) frame stacks."""

    def __init__(self, obs_shape: Sequence[int], n_actions: int, layer_norm: bool = False) -> None:
        super().__init__(obs_shape, n_actions, ((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512, layer_norm)


class MinAtarQNetwork(ConvQNetwork):
    """MinAtar's DQN network (Young & Tian 2019): 16 3x3 stride 1, fully connected 128; for (C, 10, 10)."""

    def __init__(self, obs_shape: Sequence[int], n_actions: int, layer_norm: bool = False) -> None:
        super().__init__(obs_shape, n_actions, ((16, 3, 1),), 128, layer_norm)


NETWORKS = ("mlp", "atari", "nature", "minatar")
_CONV_NETWORKS: dict[str, type[AtariQNetwork | NatureQNetwork | MinAtarQNetwork]] = {
    "atari": AtariQNetwork, "nature": NatureQNetwork, "minatar": MinAtarQNetwork}
_MIN_PIXELS = {"atari": 20, "nature": 36}  # the smallest image side whose convolutions leave >= 1 pixel
BF16_NETWORKS = ("atari", "nature")  # the nets the torch engine runs: the only ones --precision bf16 applies to


def resolve_network(kind: str, obs_shape: Sequence[int]) -> str:
    """The network for `kind` (auto|mlp|atari|minatar) and an observation shape; ValueError if they do not fit.

    auto: mlp for vectors; for images the paper's Atari net when both sides are >= 36
    pixels (its two convolutions need >= 20), else the MinAtar net.
    """
    shape = tuple(obs_shape)
    if kind == "auto":
        if len(shape) == 1:
            return "mlp"
        return "atari" if min(shape[1:]) >= 36 else "minatar"
    if kind == "mlp" and len(shape) != 1:
        raise ValueError(f"--network mlp needs a 1-D observation; this one is an image of shape {shape} "
                         "(use --network auto, atari or minatar)")
    if kind in _CONV_NETWORKS and len(shape) != 3:
        raise ValueError(f"--network {kind} needs an image observation; this one has shape {shape} (use mlp)")
    if kind in _MIN_PIXELS and min(shape[1:]) < _MIN_PIXELS[kind]:
        side = _MIN_PIXELS[kind]
        raise ValueError(f"--network {kind} needs images of at least {side}x{side} pixels, got {shape[1]}x{shape[2]}")
    if kind not in NETWORKS:
        raise ValueError(f"unknown network {kind!r}")
    return kind


def build_network(kind: str, obs_shape: Sequence[int], n_actions: int, hidden_sizes: Sequence[int],
                  seed: int, layer_norm: bool = False) -> nn.Module:
    """The Q-network of `kind` (resolved with resolve_network), initialised from `seed`
    without touching the global torch RNG. hidden_sizes apply to the MLP only; `layer_norm` to all."""
    kind = resolve_network(kind, obs_shape)
    if kind == "mlp":
        return build_model(int(obs_shape[0]), n_actions, hidden_sizes, seed, layer_norm)
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return _CONV_NETWORKS[kind](obs_shape, n_actions, layer_norm)
    finally:
        torch.random.set_rng_state(gen_state)


class TorchQ:
    """obs (numpy) -> Q-values (numpy) through a torch module, without gradients: the
    acting/evaluation callable of networks that have no numpy mirror (convolutions).
    `bf16`: under torch.autocast to bfloat16 (--precision bf16)."""

    def __init__(self, model: nn.Module, bf16: bool = False) -> None:
        self.model, self.bf16 = model, bf16

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            q: np.ndarray = self.model(torch.from_numpy(np.ascontiguousarray(obs))).numpy()
        return q


def q_function(model: nn.Module, snapshot: bool = True) -> NumpyMLP | TorchQ:
    """A numpy obs -> Q-values callable for `model`: the numpy mirror of an MLP, a TorchQ for
    anything else; of a copy of the weights if `snapshot`, else following the live weights."""
    if isinstance(model, QNetwork):
        return NumpyMLP.copy_of(model) if snapshot else NumpyMLP.view_of(model)
    return TorchQ(copy.deepcopy(model) if snapshot else model)


def q_function_from_weights(template: nn.Module, weights: dict[str, torch.Tensor]) -> NumpyMLP | TorchQ:
    """q_function of `template`'s architecture holding `weights` (a state dict, used as is)."""
    if isinstance(template, QNetwork):
        return NumpyMLP([w.numpy() for w in weights.values()], template.layer_norm)
    model = copy.deepcopy(template)
    model.load_state_dict(weights)
    return TorchQ(model)
