"""LayerNorm networks (--layer-norm): the numpy MLP and conv engines' forward and TD-loss gradients
(algo/mlp_grad.py, algo/conv_grad.py) against the torch modules, autograd and float64 finite
differences; a hand-computed LayerNorm; the compiled kernels against the numpy engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from asyncdqn.algo.conv_grad import NumpyConvQ
from asyncdqn.algo.mlp_grad import layer_norm, layer_norm_backward, split_mlp_arrays, td_loss_and_grads
from asyncdqn.learners.engines import (
    JitLayerNormMLPEngine,
    NumpyConvEngine,
    NumpyMLPEngine,
    TorchEngine,
    conv_strides,
    make_engine,
)
from asyncdqn.model import (
    AtariQNetwork,
    ConvQNetwork,
    MinAtarQNetwork,
    NatureQNetwork,
    NumpyMLP,
    QNetwork,
    build_network,
    flatten_parameters,
    q_function,
    q_function_from_weights,
    resolve_network,
)
from gradcheck import assert_central_differences, autograd_loss_and_grads


def _randomise_norms(model: nn.Module, rng: np.random.Generator) -> None:
    """Gains and shifts away from their (1, 0) init, so that a gain or shift used wrong shows."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, m.weight.shape)))
                m.bias.copy_(torch.from_numpy(rng.normal(0.0, 0.3, m.bias.shape)))


def _mlp_numpy(model: QNetwork, x: np.ndarray, a: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, list]:
    ps = [p.detach().numpy() for p in model.parameters()]
    grads = [np.full_like(p, np.nan) for p in ps]  # must be overwritten entirely
    w, b, norms = split_mlp_arrays(ps, True)
    gw, gb, gnorms = split_mlp_arrays(grads, True)
    value = td_loss_and_grads(w, b, x, a, y, kind, gw, gb, norms, gnorms)
    return value, grads


def _conv_numpy(model: ConvQNetwork) -> NumpyConvQ:
    strides = conv_strides(model)
    assert strides is not None
    return NumpyConvQ([p.detach().numpy() for p in model.parameters()], strides, layer_norm=True)


def test_hand_computed_layer_norm_and_its_gradient() -> None:
    z = np.array([[1.0, 2.0, 3.0]])  # mean 2, var 2/3: u = (-1, 0, 1) * sqrt(3/2) (eps 1e-5 aside)
    gain, shift = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0])
    y, u, r = layer_norm(z, gain, shift, axis=1)
    s = 1.0 / np.sqrt(2.0 / 3.0 + 1e-5)
    np.testing.assert_allclose(u, [[-s, 0.0, s]], rtol=1e-12)
    np.testing.assert_allclose(y, [[-s, 1.0, 3 * s]], rtol=1e-12)
    assert float(r[0, 0]) == pytest.approx(s, rel=1e-12)
    # the same features laid out (features, batch): axis 0
    y0 = layer_norm(z.T.copy(), gain, shift, axis=0)[0]
    np.testing.assert_allclose(y0, y.T, rtol=1e-12)
    # gy = (1, 0, 0): dgain = gy u = (-s, 0, 0), dshift = gy; dz = r (gain gy - mean(gain gy) - u mean(gain gy u))
    gg, gs = np.zeros(3), np.zeros(3)
    dz = layer_norm_backward(np.array([[1.0, 0.0, 0.0]]), u, r, gain, 1, gg, gs)
    np.testing.assert_allclose(gg, [-s, 0.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(gs, [1.0, 0.0, 0.0])
    want = s * (np.array([1.0, 0.0, 0.0]) - 1.0 / 3.0 - np.array([-s, 0.0, s]) * (-s / 3.0))
    np.testing.assert_allclose(dz, [want], rtol=1e-10)
    assert abs(float(dz.sum())) < 1e-12  # shifting every input alike does not move a normalised output


@pytest.mark.parametrize("kind", ["huber", "mse"])
@pytest.mark.parametrize("hidden", [(16,), (32, 32), (64, 32, 16)])
def test_mlp_with_layer_norm_matchesautograd_loss_and_grads(kind: str, hidden: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(hidden))
    model = QNetwork(6, 3, hidden, layer_norm=True)
    _randomise_norms(model, rng)
    x = (rng.normal(size=(40, 6)) * 3.0).astype(np.float32)
    a = rng.integers(0, 3, size=40)
    y = (rng.normal(size=40) * 2.0).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(NumpyMLP.view_of(model)(x), model(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)
    ref_value, ref_grads = autograd_loss_and_grads(model, x, a, y, kind)
    value, grads = _mlp_numpy(model, x, a, y, kind)
    assert value == pytest.approx(ref_value, rel=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["huber", "mse"])
def test_mlp_with_layer_norm_matches_finite_differences(kind: str) -> None:
    """Independent of autograd: central differences of the torch module's loss, float64."""
    rng = np.random.default_rng(7)
    model = QNetwork(5, 3, (12, 8), layer_norm=True).double()
    _randomise_norms(model, rng)
    x = rng.normal(size=(10, 5)) * 2.0
    a = rng.integers(0, 3, size=10)
    y = rng.normal(size=10) * 2.0
    _, grads = _mlp_numpy(model, x, a, y, kind)
    assert assert_central_differences(model, x, a, y, kind, grads, per_param=8, abs_tol=1e-8) > 50


def _images(rng: np.random.Generator, batch: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=(batch, *shape), dtype=np.uint8)


@pytest.mark.parametrize("kind", ["huber", "mse"])
def test_conv_nets_with_layer_norm_equalautograd_loss_and_grads(kind: str) -> None:
    """MinAtar's net, two strided conv layers on a non-square image (col2im and a LayerNorm between
    them), and the paper's Atari net, each with LayerNorm after every layer."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    for model, batch in [(MinAtarQNetwork((4, 10, 10), 5, layer_norm=True), 40),
                         (ConvQNetwork((3, 13, 11), 5, ((6, 3, 2), (4, 2, 1)), 20, layer_norm=True), 12),
                         (AtariQNetwork((4, 84, 84), 6, layer_norm=True), 3)]:
        _randomise_norms(model, rng)
        obs = _images(rng, batch, model.obs_shape)
        a = rng.integers(0, model.n_actions, size=batch)
        y = (rng.normal(size=batch) * 2.0).astype(np.float32)
        net = _conv_numpy(model)
        with torch.no_grad():
            np.testing.assert_allclose(net(obs), model(torch.from_numpy(obs)).numpy(), rtol=1e-4, atol=1e-5)
        ref_value, ref_grads = autograd_loss_and_grads(model, obs, a, y, kind)
        grads = [np.full(p.shape, np.nan, dtype=np.float32) for p in model.parameters()]
        value = net.loss_and_grads(obs, a, y, kind, grads)
        assert value == pytest.approx(ref_value, rel=1e-5)
        for g, r in zip(grads, ref_grads, strict=True):
            np.testing.assert_allclose(g, r, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("kind", ["huber", "mse"])
def test_conv_with_layer_norm_matches_finite_differences(kind: str) -> None:
    torch.manual_seed(3)
    model = ConvQNetwork((2, 7, 6), 3, ((4, 3, 2), (3, 2, 1)), 8, layer_norm=True).double()
    rng = np.random.default_rng(0)
    _randomise_norms(model, rng)
    obs = _images(rng, 6, (2, 7, 6))
    a = rng.integers(0, 3, size=6)
    y = rng.normal(size=6) * 2.0
    net = _conv_numpy(model)
    grads = [np.full(p.shape, np.nan) for p in model.parameters()]
    net.loss_and_grads(obs, a, y, kind, grads)
    assert net.dtype == np.float64
    assert assert_central_differences(model, obs, a, y, kind, grads, per_param=8, abs_tol=1e-8) > 60


def test_architectures_with_layer_norm_and_the_nature_net() -> None:
    # LayerNorm after each hidden Linear, before its ReLU: a gain and a shift per hidden unit
    mlp = build_network("mlp", (8,), 4, (16, 16), seed=0, layer_norm=True)
    assert [type(m).__name__ for m in mlp.q] == ["Linear", "LayerNorm", "ReLU"] * 2 + ["Linear"]
    assert sum(p.numel() for p in mlp.parameters()) == (8 * 16 + 16) + (16 * 16 + 16) + (16 * 4 + 4) + 4 * 16
    nature = build_network("nature", (4, 84, 84), 6, (), seed=0)
    assert isinstance(nature, NatureQNetwork) and not nature.layer_norm
    # conv 4*32*8*8+32, 32*64*4*4+64, 64*64*3*3+64; fc 64*7*7*512+512; out 512*6+6 (84 -> 20 -> 9 -> 7 pixels)
    plain = 8224 + 32832 + 36928 + 1606144 + 3078
    assert sum(p.numel() for p in nature.parameters()) == plain
    assert nature(torch.zeros((2, 4, 84, 84), dtype=torch.uint8)).shape == (2, 6)
    nature_ln = build_network("nature", (4, 84, 84), 6, (), seed=0, layer_norm=True)
    # LayerNorm over each conv output (C, H, W) and over the 512 hidden units: gain + shift each
    norms = 2 * (32 * 20 * 20 + 64 * 9 * 9 + 64 * 7 * 7 + 512)
    assert sum(p.numel() for p in nature_ln.parameters()) == plain + norms
    assert conv_strides(nature_ln) == [(4, 4), (2, 2), (1, 1)]
    assert resolve_network("nature", (4, 36, 36)) == "nature" and resolve_network("auto", (4, 84, 84)) == "atari"
    for shape, msg in [((4, 35, 84), "at least 36x36"), ((8,), "needs an image")]:
        with pytest.raises(ValueError, match=msg):
            resolve_network("nature", shape)
    assert isinstance(make_engine(nature_ln), TorchEngine)


def test_engines_with_layer_norm() -> None:
    """Numpy MLP and conv engines equal the torch engine (loss, clipped gradient, online and target
    Q-values); the policy and evaluation mirrors apply it."""
    rng = np.random.default_rng(2)
    mlp = QNetwork(6, 3, (16, 16), layer_norm=True)
    _randomise_norms(mlp, rng)
    conv = MinAtarQNetwork((3, 10, 10), 4, layer_norm=True)
    _randomise_norms(conv, rng)
    for model, obs in [(mlp, rng.normal(size=(20, 6)).astype(np.float32)), (conv, _images(rng, 20, (3, 10, 10)))]:
        fast = NumpyConvEngine(conv) if model is conv else NumpyMLPEngine(mlp)
        slow = TorchEngine(model)
        actions = rng.integers(0, model.n_actions, size=20)
        y = (rng.normal(size=20) * 3).astype(np.float32)
        loss_fast = fast.loss_and_grads(obs, actions, y, "huber")
        fast.attach_grads(0.01)
        g_fast = [p.grad.clone() for p in model.parameters()]
        loss_slow = slow.loss_and_grads(obs, actions, y, "huber")
        slow.attach_grads(0.01)
        assert loss_fast == pytest.approx(loss_slow, rel=1e-5)
        for a, b in zip(g_fast, [p.grad for p in model.parameters()], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(fast.online(obs), slow.online(obs), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fast.target(obs), slow.target(obs), rtol=1e-5, atol=1e-5)
        with torch.no_grad():
            want = model(torch.from_numpy(obs)).numpy()
        np.testing.assert_allclose(q_function(model)(obs), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(q_function_from_weights(model, {k: v.clone() for k, v in
                                                                   model.state_dict().items()})(obs),
                                   want, rtol=1e-5, atol=1e-5)
    assert isinstance(make_engine(mlp, jit=False), NumpyMLPEngine)
    assert isinstance(make_engine(conv), NumpyConvEngine)
    other_eps = MinAtarQNetwork((3, 10, 10), 4, layer_norm=True)
    other_eps.head[1].eps = 1e-3  # not what the numpy engine computes: torch runs it
    assert conv_strides(other_eps) is None and isinstance(make_engine(other_eps), TorchEngine)


@pytest.mark.parametrize("hidden", [(16,), (64, 32)])
@pytest.mark.parametrize("loss", ["huber", "mse"])
def test_compiled_layer_norm_kernels_equal_the_numpy_engine(hidden: tuple[int, ...], loss: str) -> None:
    """algo/mlp_kernels.py's LayerNorm kernels (the default engine of a LayerNorm MLP whose parameters are one
    flat buffer, as every worker's are): the same Q-values, epsilon-greedy actions, loss and clipped
    gradient as the numpy engine, and a target copy of their own."""
    rng = np.random.default_rng(len(hidden))
    model = QNetwork(6, 4, hidden, layer_norm=True)
    _randomise_norms(model, rng)
    flatten_parameters(model)
    fast, ref = make_engine(model, jit=True), NumpyMLPEngine(model)
    assert isinstance(fast, JitLayerNormMLPEngine)
    obs = (rng.normal(size=(40, 6)) * 2).astype(np.float32)
    np.testing.assert_allclose(fast.online(obs), ref.online(obs), rtol=1e-5, atol=1e-5)
    eps, uniforms = np.full(40, 0.3), rng.random(40)
    random_actions = rng.integers(0, 4, 40)
    np.testing.assert_array_equal(fast.act_drawn(obs, eps, uniforms, random_actions),
                                  ref.act_drawn(obs, eps, uniforms, random_actions))
    actions, y = rng.integers(0, 4, 40), (rng.normal(size=40) * 2).astype(np.float32)
    assert fast.loss_and_grads(obs, actions, y, loss) == pytest.approx(ref.loss_and_grads(obs, actions, y, loss),
                                                                      rel=1e-5)
    fast.attach_grads(0.01)  # clipped
    g_fast = [p.grad.clone() for p in model.parameters()]
    ref.attach_grads(0.01)
    for a, b in zip(g_fast, [p.grad for p in model.parameters()], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    fast.target_flat[:] = 0.0  # the target copy is local: the online weights are untouched
    np.testing.assert_allclose(fast.target(obs), 0.0)
    np.testing.assert_allclose(fast.online(obs), ref.online(obs), rtol=1e-5, atol=1e-5)
