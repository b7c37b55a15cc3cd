"""The hand-written TD-loss gradient (algo/mlp_grad.py) against torch autograd, and the worker using it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from asyncdqn.algo.mlp_grad import clip_grad_norm, td_loss_and_grads
from asyncdqn.model import build_model
from gradcheck import autograd_loss_and_grads


def _numpy(model: nn.Module, x: np.ndarray, a: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, list]:
    ps = [p.detach().numpy() for p in model.parameters()]
    grads = [np.full_like(p, np.nan) for p in ps]  # must be overwritten entirely
    value = td_loss_and_grads(ps[0::2], ps[1::2], x, a, y, kind, grads[0::2], grads[1::2])
    return value, grads


@pytest.mark.parametrize("kind", ["huber", "mse"])
@pytest.mark.parametrize("hidden", [(16,), (32, 32), (64, 32, 16)])
def test_matchesautograd_loss_and_grads(kind: str, hidden: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(hidden))
    model = build_model(6, 3, hidden, seed=1)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    a = rng.integers(0, 3, size=40)
    # targets spread so that the huber loss has samples on both sides of |d| = 1
    y = (rng.normal(size=40) * 2.0).astype(np.float32)
    ref_value, ref_grads = autograd_loss_and_grads(model, x, a, y, kind)
    value, grads = _numpy(model, x, a, y, kind)
    assert value == pytest.approx(ref_value, rel=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-7)


def test_hand_computed_single_layer() -> None:
    """Q = x W^T + b with one sample: dL/dW = l'(d) * x for the taken action's row, 0 elsewhere."""
    w = np.array([[1.0, 2.0], [0.5, -1.0]], dtype=np.float32)
    b = np.array([0.0, 1.0], dtype=np.float32)
    x = np.array([[1.0, 3.0]], dtype=np.float32)  # Q = [7, -1.5]
    gw, gb = [np.zeros_like(w)], [np.zeros_like(b)]
    # action 0, target 4: d = 3 -> huber 3 - 0.5 = 2.5, slope clip(3) = 1
    assert td_loss_and_grads([w], [b], x, np.array([0]), np.array([4.0], np.float32), "huber", gw, gb) == 2.5
    np.testing.assert_array_equal(gw[0], [[1.0, 3.0], [0.0, 0.0]])
    np.testing.assert_array_equal(gb[0], [1.0, 0.0])
    # action 1, target -1: d = -0.5 -> mse 0.25, slope 2d = -1
    assert td_loss_and_grads([w], [b], x, np.array([1]), np.array([-1.0], np.float32), "mse", gw, gb) == 0.25
    np.testing.assert_array_equal(gw[0], [[0.0, 0.0], [-1.0, -3.0]])
    np.testing.assert_array_equal(gb[0], [0.0, -1.0])


def test_relu_derivative_at_zero_is_zero_like_torch() -> None:
    w1 = np.array([[1.0], [-1.0]], dtype=np.float32)  # hidden = relu([x, -x]); x = 0 -> both exactly 0
    b1 = np.zeros(2, dtype=np.float32)
    w2 = np.array([[1.0, 1.0]], dtype=np.float32)
    b2 = np.zeros(1, dtype=np.float32)
    grads = [np.zeros_like(w1), np.zeros_like(b1), np.zeros_like(w2), np.zeros_like(b2)]
    td_loss_and_grads([w1, w2], [b1, b2], np.zeros((1, 1), np.float32), np.array([0]), np.array([1.0], np.float32),
                      "mse", grads[0::2], grads[1::2])
    np.testing.assert_array_equal(grads[1], [0.0, 0.0])  # no gradient through relu'(0)
    np.testing.assert_array_equal(grads[3], [-2.0])


def test_clip_grad_norm_matches_torch() -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=s).astype(np.float32) for s in [(4, 3), (4,), (2, 4)]]
    tensors = [torch.nn.Parameter(torch.zeros(a.shape)) for a in arrays]
    for t, a in zip(tensors, arrays, strict=True):
        t.grad = torch.from_numpy(a.copy())
    ref = float(nn.utils.clip_grad_norm_(tensors, 0.5))
    norm = clip_grad_norm(arrays, 0.5)
    assert norm == pytest.approx(ref, rel=1e-6)
    for t, a in zip(tensors, arrays, strict=True):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-6)
    assert np.sqrt(sum((a**2).sum() for a in arrays)) == pytest.approx(0.5, rel=1e-5)
    before = [a.copy() for a in arrays]
    assert clip_grad_norm(arrays, 10.0) == pytest.approx(0.5, rel=1e-5)  # below the bound: unchanged
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_unknown_loss_is_rejected() -> None:
    w, b = [np.zeros((1, 1), np.float32)], [np.zeros(1, np.float32)]
    with pytest.raises(ValueError, match="unknown loss"):
        td_loss_and_grads(w, b, np.zeros((1, 1), np.float32), np.array([0]), np.zeros(1, np.float32), "l1",
                          [np.zeros_like(w[0])], [np.zeros_like(b[0])])
