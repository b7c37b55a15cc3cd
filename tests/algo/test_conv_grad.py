"""The numpy conv Q-network (algo/conv_grad.py) against the torch module and autograd, and against
float64 finite differences: forward, TD-loss value and every parameter's gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from asyncdqn.algo.conv_grad import NumpyConvQ
from asyncdqn.algo.targets import td_loss
from asyncdqn.learners.engines import conv_strides
from asyncdqn.model import AtariQNetwork, ConvQNetwork, MinAtarQNetwork
from conv_example import hand_computed_example
from gradcheck import assert_central_differences


def _numpy_net(model: nn.Module) -> NumpyConvQ:
    strides = conv_strides(model)
    assert strides is not None
    return NumpyConvQ([p.detach().numpy() for p in model.parameters()], strides)


def _images(rng: np.random.Generator, batch: int, shape: tuple[int, ...], binary: bool) -> np.ndarray:
    if binary:  # MinAtar's kind: {0, 255}, mostly 0
        return ((rng.random((batch, *shape)) < 0.2) * 255).astype(np.uint8)
    return rng.integers(0, 256, size=(batch, *shape), dtype=np.uint8)


def _autograd(model: nn.Module, obs: np.ndarray, a: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, list]:
    model.zero_grad()
    q = model(torch.from_numpy(obs)).gather(1, torch.from_numpy(a).view(-1, 1)).squeeze(1)
    loss = td_loss(q, torch.from_numpy(y), kind)
    loss.backward()
    return float(loss.detach()), [p.grad.numpy().copy() for p in model.parameters()]


def _numpy(model: nn.Module, obs: np.ndarray, a: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, list]:
    grads = [np.full(p.shape, np.nan, dtype=np.float32) for p in model.parameters()]  # must be overwritten
    value = _numpy_net(model).loss_and_grads(obs, a, y, kind, grads)
    return value, grads


@pytest.mark.parametrize("channels", [1, 4, 7, 10])
@pytest.mark.parametrize("batch", [1, 8, 40])
@pytest.mark.parametrize("binary", [True, False])
def test_minatar_forward_equals_the_torch_module(channels: int, batch: int, binary: bool) -> None:
    torch.manual_seed(channels)
    model = MinAtarQNetwork((channels, 10, 10), 6)
    obs = _images(np.random.default_rng(batch), batch, (channels, 10, 10), binary)
    with torch.no_grad():
        want = model(torch.from_numpy(obs)).numpy()
    got = _numpy_net(model)(obs)
    assert got.shape == (batch, 6) and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["huber", "mse"])
@pytest.mark.parametrize(("channels", "batch"), [(1, 1), (4, 5), (4, 40), (10, 40), (6, 80)])
def test_minatar_gradients_equal_autograd(kind: str, channels: int, batch: int) -> None:
    torch.manual_seed(batch)
    model = MinAtarQNetwork((channels, 10, 10), 4)
    rng = np.random.default_rng(channels)
    obs = _images(rng, batch, (channels, 10, 10), binary=batch % 2 == 0)
    a = rng.integers(0, 4, size=batch)
    y = (rng.normal(size=batch) * 2.0).astype(np.float32)  # |d| on both sides of 1 for the huber loss
    _assert_equals_autograd(model, obs, a, y, kind, atol=1e-7)


def _assert_equals_autograd(model, obs, a, y, kind: str, atol: float) -> None:
    """The numpy loss and gradients of `model` equal torch autograd's."""
    ref_value, ref_grads = _autograd(model, obs, a, y, kind)
    value, grads = _numpy(model, obs, a, y, kind)
    assert value == pytest.approx(ref_value, rel=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=atol)


@pytest.mark.parametrize("kind", ["huber", "mse"])
def test_strided_multi_layer_and_atari_nets_equal_autograd(kind: str) -> None:
    """Two conv layers with strides (col2im between them), on a non-square image; and the paper's net."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    for model, batch in [(ConvQNetwork((3, 13, 11), 5, ((6, 3, 2), (4, 2, 1)), 20), 12),
                         (AtariQNetwork((4, 84, 84), 6), 3)]:
        obs = _images(rng, batch, model.obs_shape, binary=False)
        a = rng.integers(0, model.n_actions, size=batch)
        y = (rng.normal(size=batch) * 2.0).astype(np.float32)
        with torch.no_grad():
            np.testing.assert_allclose(_numpy_net(model)(obs), model(torch.from_numpy(obs)).numpy(),
                                       rtol=1e-5, atol=1e-6)
        _assert_equals_autograd(model, obs, a, y, kind, atol=1e-6)


@pytest.mark.parametrize("kind", ["huber", "mse"])
def test_float64_gradient_matches_finite_differences(kind: str) -> None:
    """Independent of autograd: central differences of the torch module's loss, float64, two strided convs."""
    torch.manual_seed(3)
    model = ConvQNetwork((2, 7, 6), 3, ((4, 3, 2), (3, 2, 1)), 8).double()
    with torch.no_grad():  # larger weights: activations away from the relu kinks and |d| > 1 for some samples
        for p in model.parameters():
            p.mul_(3.0)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, size=(6, 2, 7, 6), dtype=np.uint8)
    a = rng.integers(0, 3, size=6)
    y = rng.normal(size=6) * 2.0
    net = _numpy_net(model)
    grads = [np.full(p.shape, np.nan) for p in model.parameters()]
    net.loss_and_grads(obs, a, y, kind, grads)

    assert net.dtype == np.float64
    assert assert_central_differences(model, obs, a, y, kind, grads, per_param=10, abs_tol=1e-8) > 40


def test_hand_computed_forward_divides_uint8_by_255() -> None:
    """The example of tests/test_conv.py, through the numpy net."""
    net, img = hand_computed_example()
    np.testing.assert_allclose(_numpy_net(net)(img), [[2.9, 1.3]], rtol=1e-6)


def test_relu_derivative_at_zero_is_zero_like_torch() -> None:
    """Blank images and zero conv biases: every conv output is exactly 0, so no gradient reaches the conv."""
    model = MinAtarQNetwork((2, 10, 10), 3)
    with torch.no_grad():
        model.features[0].bias.zero_()
    obs = np.zeros((4, 2, 10, 10), np.uint8)
    a, y = np.array([0, 1, 2, 0]), np.array([1.0, -1.0, 3.0, 0.5], np.float32)
    _, ref = _autograd(model, obs, a, y, "mse")
    _, grads = _numpy(model, obs, a, y, "mse")
    np.testing.assert_array_equal(grads[1], 0.0)
    np.testing.assert_array_equal(ref[1], 0.0)
    for g, r in zip(grads, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-7)


def test_reads_the_arrays_in_place_and_rejects_bad_input() -> None:
    model = MinAtarQNetwork((1, 10, 10), 2)
    net = _numpy_net(model)
    obs = np.full((1, 1, 10, 10), 255, np.uint8)
    before = net(obs)
    with torch.no_grad():
        model.head[2].bias.add_(1.0)  # the numpy net holds views: it follows the module's updates
    np.testing.assert_allclose(net(obs), before + 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown loss"):
        net.loss_and_grads(obs, np.array([0]), np.array([0.0], np.float32), "l1",
                           [np.empty(p.shape, np.float32) for p in model.parameters()])
    arrays = [p.detach().numpy() for p in model.parameters()]
    with pytest.raises(ValueError, match="does not fit"):
        NumpyConvQ(arrays, [(1, 1), (1, 1)])
    with pytest.raises(ValueError, match="pairs"):
        NumpyConvQ(arrays[:-1], [(1, 1)])
