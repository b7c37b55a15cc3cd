"""Conv Q-networks (model.py) and the conv network engines (engines.py): shapes, a hand-computed
forward, the torch engine's gradients against finite differences and against the verified numpy
MLP path, the numpy conv engine against the torch engine, the shared optimizers (flat path
included) and the target copy on conv parameters."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from asyncdqn.algo.optim import SharedAdam, SharedRMSprop
from asyncdqn.backends.base import SharedTarget
from asyncdqn.learners.engines import NumpyConvEngine, NumpyMLPEngine, TorchEngine, conv_strides, make_engine
from asyncdqn.model import (
    AtariQNetwork,
    MinAtarQNetwork,
    NumpyMLP,
    QNetwork,
    TorchQ,
    build_network,
    flatten_parameters,
    q_function,
    resolve_network,
)
from conv_example import hand_computed_example
from gradcheck import assert_central_differences


def test_network_choice_from_the_observation_shape() -> None:
    assert resolve_network("auto", (8,)) == "mlp"
    assert resolve_network("auto", (4, 84, 84)) == "atari"
    assert resolve_network("auto", (7, 10, 10)) == "minatar"
    assert resolve_network("minatar", (4, 84, 84)) == "minatar"  # allowed, just not the default
    for kind, shape, msg in [("mlp", (4, 84, 84), "needs a 1-D observation"),
                             ("atari", (8,), "needs an image"), ("atari", (4, 10, 10), "at least 20x20")]:
        with pytest.raises(ValueError, match=msg):
            resolve_network(kind, shape)


def test_paper_and_minatar_architectures() -> None:
    atari = build_network("auto", (4, 84, 84), 6, (), seed=0)
    assert isinstance(atari, AtariQNetwork)
    # conv1 4*16*8*8+16, conv2 16*32*4*4+32, fc 32*9*9*256+256, out 256*6+6 (84 -> 20 -> 9 pixels)
    assert sum(p.numel() for p in atari.parameters()) == 4112 + 8224 + 663808 + 1542
    minatar = build_network("auto", (4, 10, 10), 3, (), seed=0)
    assert isinstance(minatar, MinAtarQNetwork)
    # conv 4*16*3*3+16, fc 16*8*8*128+128, out 128*3+3
    assert sum(p.numel() for p in minatar.parameters()) == 592 + 131200 + 387
    x = torch.zeros((5, 4, 84, 84), dtype=torch.uint8)
    assert atari(x).shape == (5, 6)
    # Same seed, same weights; the global torch RNG is left alone.
    state = torch.random.get_rng_state()
    again = build_network("atari", (4, 84, 84), 6, (), seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(atari.parameters(), again.parameters(), strict=True))


def test_hand_computed_forward_divides_uint8_by_255() -> None:
    net, img = hand_computed_example()
    # conv: 1 + 0.2 + 1 - 1 = 1.2 -> relu 1.2 -> fc 2*1.2 + 0.5 = 2.9 -> relu -> Q = (2.9, 10 - 8.7)
    q = TorchQ(net)(img)
    np.testing.assert_allclose(q, [[2.9, 1.3]], rtol=1e-6)
    img[:] = 0  # conv -1 -> relu 0 -> fc 0.5 -> Q = (0.5, 8.5)
    np.testing.assert_allclose(TorchQ(net)(img), [[0.5, 8.5]], rtol=1e-6)


@pytest.mark.parametrize("loss", ["huber", "mse"])
def test_torch_engine_gradient_matches_finite_differences(loss: str) -> None:
    torch.manual_seed(0)
    net = MinAtarQNetwork((2, 5, 5), 3).double()
    with torch.no_grad():  # a smaller head keeps the finite-difference loop short
        for p in net.parameters():
            p.mul_(3.0)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, size=(6, 2, 5, 5), dtype=np.uint8)
    actions = rng.integers(0, 3, size=6)
    targets = rng.normal(size=6) * 2.0
    engine = TorchEngine(net)
    engine.loss_and_grads(obs, actions, targets.astype(np.float64), loss)
    grads = [p.grad.detach().clone() for p in net.parameters()]

    assert assert_central_differences(net, obs, actions, targets, loss, grads, per_param=12, abs_tol=1e-7) > 40


def _assert_engines_agree(fast: Any, slow: TorchEngine, model: nn.Module, obs: np.ndarray, actions: np.ndarray,
                          y: np.ndarray, loss: str, grad_atol: float, act_rows: np.ndarray) -> None:
    """A numpy engine and the torch engine give the same loss, the same gradient clipped to norm 0.05
    and handed over as p.grad, and the same online Q-values on `act_rows`."""
    loss_fast = fast.loss_and_grads(obs, actions, y, loss)
    fast.attach_grads(0.05)
    g_fast = [p.grad.clone() for p in model.parameters()]
    loss_slow = slow.loss_and_grads(obs, actions, y, loss)
    slow.attach_grads(0.05)
    g_slow = [p.grad.clone() for p in model.parameters()]
    assert loss_fast == pytest.approx(loss_slow, rel=1e-5)
    for a, b in zip(g_fast, g_slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=grad_atol)
    norm = float(torch.sqrt(sum((g * g).sum() for g in g_slow)))
    assert norm == pytest.approx(0.05, rel=1e-4)  # clipped
    np.testing.assert_allclose(fast.online(act_rows), slow.online(act_rows), rtol=1e-5, atol=1e-6)


def test_torch_engine_on_an_mlp_equals_the_numpy_engine() -> None:
    """The autograd path computes the same loss and clipped gradient as the hand-written one."""
    model = QNetwork(6, 3, (16, 16))
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(20, 6)).astype(np.float32)
    actions = rng.integers(0, 3, size=20)
    y = rng.normal(size=20).astype(np.float32) * 3
    # unclipped, the gradient's norm is ~0.36: the 0.05 clip applies
    _assert_engines_agree(NumpyMLPEngine(model), TorchEngine(model), model, obs, actions, y, "huber",
                          grad_atol=1e-6, act_rows=obs)


def test_engine_choice() -> None:
    assert isinstance(make_engine(QNetwork(3, 2)), NumpyMLPEngine)
    assert isinstance(make_engine(MinAtarQNetwork((1, 10, 10), 2)), NumpyConvEngine)
    assert isinstance(make_engine(AtariQNetwork((4, 84, 84), 6)), TorchEngine)  # numpy measured slower there
    assert isinstance(q_function(QNetwork(3, 2)), NumpyMLP)
    assert isinstance(q_function(MinAtarQNetwork((1, 10, 10), 2)), TorchQ)


def test_conv_strides_only_for_what_the_numpy_engine_computes() -> None:
    assert conv_strides(AtariQNetwork((4, 84, 84), 6)) == [(4, 4), (2, 2)]
    assert conv_strides(MinAtarQNetwork((3, 10, 10), 2)) == [(1, 1)]
    assert conv_strides(QNetwork(3, 2)) is None
    padded = MinAtarQNetwork((3, 10, 10), 2)
    padded.features[0].padding = (1, 1)
    assert conv_strides(padded) is None
    assert isinstance(make_engine(padded), TorchEngine)
    with pytest.raises(ValueError, match="not a plain ConvQNetwork"):
        NumpyConvEngine(padded)


@pytest.mark.parametrize("loss", ["huber", "mse"])
def test_numpy_conv_engine_equals_the_torch_engine(loss: str) -> None:
    """Same loss, same clipped gradient handed over as p.grad, same Q-values (online and target)."""
    torch.manual_seed(5)
    model = MinAtarQNetwork((7, 10, 10), 5)
    rng = np.random.default_rng(4)
    obs = ((rng.random((40, 7, 10, 10)) < 0.2) * 255).astype(np.uint8)
    actions = rng.integers(0, 5, size=40)
    y = (rng.normal(size=40) * 2).astype(np.float32)
    fast, slow = NumpyConvEngine(model), TorchEngine(model)
    _assert_engines_agree(fast, slow, model, obs, actions, y, loss, grad_atol=1e-7, act_rows=obs[:8])
    np.testing.assert_allclose(fast.target(obs[:8]), slow.target(obs[:8]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine_cls", [TorchEngine, NumpyConvEngine])
@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
def test_shared_optimizers_step_conv_parameters_like_torch(kind: str, engine_cls: type) -> None:
    net = MinAtarQNetwork((3, 10, 10), 4)
    ref = copy.deepcopy(net)
    flatten_parameters(net)  # as backends/shared.py does: the optimizer's flat path, with flat gradients
    net.share_memory()
    if kind == "adam":
        ours: SharedAdam | SharedRMSprop = SharedAdam(net.parameters(), lr=1e-3)
        theirs: torch.optim.Optimizer = torch.optim.Adam(ref.parameters(), lr=1e-3)
    else:
        ours = SharedRMSprop(net.parameters(), lr=7e-4, alpha=0.99, eps=0.1)
        theirs = torch.optim.RMSprop(ref.parameters(), lr=7e-4, alpha=0.99, eps=0.1)
    rng = np.random.default_rng(0)
    engine = engine_cls(net)
    for _ in range(3):
        obs = rng.integers(0, 256, size=(8, 3, 10, 10), dtype=np.uint8)
        a = rng.integers(0, 4, size=8)
        y = rng.normal(size=8).astype(np.float32)
        engine.loss_and_grads(obs, a, y, "huber")
        engine.attach_grads(None)
        ours.step()
        theirs.zero_grad()
        if engine_cls is TorchEngine:
            q = ref(torch.from_numpy(obs)).gather(1, torch.from_numpy(a).unsqueeze(1)).squeeze(1)
            nn.functional.smooth_l1_loss(q, torch.from_numpy(y)).backward()
        else:  # the same gradient (equal to autograd's to float32 rounding, tested above): Adam's
            # division by sqrt(v) would turn a rounding difference in a near-zero gradient into a
            # different step, so the optimizers are compared on identical inputs
            for r, p in zip(ref.parameters(), net.parameters(), strict=True):
                r.grad = p.grad.clone()
        theirs.step()
    # the numpy engine's one flat gradient buffer lets the optimizer update everything in one pass
    assert (ours._flat_views() is not None) == (engine_cls is NumpyConvEngine)
    for p, r in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, r, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("engine_cls", [TorchEngine, NumpyConvEngine])
def test_target_store_fills_the_engines_local_copy(engine_cls: type) -> None:
    net = MinAtarQNetwork((2, 10, 10), 3)
    target_model = copy.deepcopy(net)
    store = SharedTarget(target_model)
    engine = engine_cls(net)
    obs = np.random.default_rng(0).integers(0, 256, size=(4, 2, 10, 10), dtype=np.uint8)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)  # the online net moves on; the target copy does not follow by itself
    assert not np.allclose(engine.target(obs), engine.online(obs))
    store.sync_from(net, step=1)
    assert store.read_into(engine.target_arrays) == 1
    np.testing.assert_allclose(engine.target(obs), engine.online(obs), rtol=1e-6)


@pytest.mark.parametrize("engine_cls", [NumpyConvEngine, TorchEngine])
@pytest.mark.parametrize("clip", [None, 0.05])
def test_attach_grads_scale_gives_the_summed_loss_gradient_then_clips(engine_cls: Any, clip: float | None) -> None:
    # --grad-reduce sum: scale = rows turns the mean loss's gradient into the summed loss's (the
    # paper's accumulation), and the clip applies to that sum.
    torch.manual_seed(3)
    net = MinAtarQNetwork((3, 10, 10), 4)
    ref = copy.deepcopy(net)
    rng = np.random.default_rng(1)
    obs = rng.integers(0, 2, size=(6, 3, 10, 10), dtype=np.uint8)
    actions = rng.integers(0, 4, size=6)
    y = rng.normal(size=6).astype(np.float32)
    q = ref(torch.from_numpy(obs)).gather(1, torch.from_numpy(actions).unsqueeze(1)).squeeze(1)
    nn.functional.smooth_l1_loss(q, torch.from_numpy(y), reduction="sum").backward()
    want = [p.grad.clone() for p in ref.parameters()]
    norm = float(torch.sqrt(sum((g * g).sum() for g in want)))
    if clip is not None:
        assert norm > clip
        want = [g * (clip / norm) for g in want]
    engine = engine_cls(net)
    engine.loss_and_grads(obs, actions, y, "huber")
    engine.attach_grads(clip, scale=6.0)
    for got, w in zip((p.grad for p in net.parameters()), want, strict=True):
        torch.testing.assert_close(got, w, rtol=1e-4, atol=1e-6)
