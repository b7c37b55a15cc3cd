"""Gradient of the TD loss of an MLP Q-network, by hand, in numpy.

At the batch sizes of an actor-learner (t_max x envs, ~40 samples) and these
network widths, torch autograd spends most of its time in per-call overhead:
forward + backward of a 8-128-128-4 MLP on 40 samples costs ~0.5 ms through
autograd and ~0.05 ms as the handful of matrix products below. Same math:

    h_0 = x,  z_i = h_{i-1} W_i^T + b_i,  h_i = relu(z_i) (i < L),  Q = z_L
    loss = mean_b  l(Q[b, a_b] - y_b),   l = huber (delta 1) or squared error

    dloss/dQ[b, a_b] = l'(Q[b, a_b] - y_b) / B,   huber: clip(d, -1, 1),  mse: 2 d
    g_L = dloss/dz_L;  dW_i = g_i^T h_{i-1};  db_i = sum_b g_i;
    g_{i-1} = (g_i W_i) * [h_{i-1} > 0]          (relu'(0) = 0, as torch)

With LayerNorm (model.QNetwork(layer_norm=True)), each hidden layer normalises z_i over its
features before the ReLU, per row, with learnable gain and shift (torch's LayerNorm, eps 1e-5):

    mu = mean(z),  var = mean((z - mu)^2),  r = 1 / sqrt(var + eps),  u = (z - mu) r,
    y = gain * u + shift,  h = relu(y)
    backward, with g = dloss/dy:  dgain = sum_b g u,  dshift = sum_b g,
    dz = r (gain g - mean(gain g) - u mean(gain g u))     (means over the features of a row)

`tests/algo/test_mlp_grad.py` checks it against torch autograd (`td_loss`), with and without
LayerNorm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LN_EPS = 1e-5  # torch's LayerNorm default, which model.py's LayerNorm layers use too


def split_mlp_arrays(arrays: Sequence[np.ndarray], layer_norm: bool) -> tuple[
        list[np.ndarray], list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """An MLP's parameter arrays in model.parameters() order -> (weights, biases, [(gain, shift)] per
    hidden layer; empty without LayerNorm). ValueError if the count does not fit."""
    n = len(arrays)
    if not layer_norm:
        if n % 2 or n < 2:
            raise ValueError("expected alternating weight and bias arrays")
        return list(arrays[0::2]), list(arrays[1::2]), []
    if n < 2 or (n - 2) % 4:
        raise ValueError("expected (weight, bias, gain, shift) per hidden layer, then (weight, bias)")
    hidden = [arrays[i:i + 4] for i in range(0, n - 2, 4)]
    weights = [h[0] for h in hidden] + [arrays[-2]]
    biases = [h[1] for h in hidden] + [arrays[-1]]
    return weights, biases, [(h[2], h[3]) for h in hidden]


def _sum(x: np.ndarray, axis: int, keepdims: bool = False, scale: float = 1.0) -> np.ndarray:
    """scale * the sum of the 2-D `x` over `axis`, as a matrix product with ones: numpy's reductions
    over (features, batch) arrays cost 4-6x more than BLAS here (1024 x 80: ~20 us against ~4 us)."""
    ones = np.full(x.shape[axis], scale, dtype=x.dtype)
    out: np.ndarray = ones @ x if axis == 0 else x @ ones
    if keepdims:
        return out[None, :] if axis == 0 else out[:, None]
    return out


def layer_norm(z: np.ndarray, gain: np.ndarray, shift: np.ndarray, axis: int) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """LayerNorm of the 2-D `z` over `axis` (its features; the other axis is the batch), with gain and
    shift given per feature (1-D, or any shape of the same size). Returns (y, u, r): the output, the
    normalised input and 1/std (per row), what `layer_norm_backward` needs. Same dtype as z."""
    g, s = (gain.reshape(-1), shift.reshape(-1)) if axis == 1 else (gain.reshape(-1, 1), shift.reshape(-1, 1))
    inv_n = 1.0 / z.shape[axis]
    u = z - _sum(z, axis, True, inv_n)
    y = np.square(u)  # y is scratch until the end
    r = 1.0 / np.sqrt(_sum(y, axis, True, inv_n) + z.dtype.type(LN_EPS))
    u *= r
    np.multiply(u, g, out=y)
    y += s
    return y, u, r


def layer_norm_backward(gy: np.ndarray, u: np.ndarray, r: np.ndarray, gain: np.ndarray, axis: int,
                        grad_gain: np.ndarray, grad_shift: np.ndarray) -> np.ndarray:
    """The gradient of LayerNorm's input from that of its output `gy` (see the module docstring);
    the gain's and shift's gradients are written into grad_gain / grad_shift (their own shapes)."""
    batch_axis = 1 - axis
    g = gain.reshape(-1) if axis == 1 else gain.reshape(-1, 1)
    inv_n = 1.0 / gy.shape[axis]
    gyu = gy * u
    np.copyto(grad_gain, _sum(gyu, batch_axis).reshape(grad_gain.shape))
    np.copyto(grad_shift, _sum(gy, batch_axis).reshape(grad_shift.shape))
    gyu *= g  # now gx u, with gx = gain gy
    m2 = _sum(gyu, axis, True, inv_n)
    gz: np.ndarray = np.multiply(gy, g, out=gyu)  # gx, in gyu's memory
    gz -= _sum(gz, axis, True, inv_n)
    gz -= u * m2
    gz *= r
    return gz


@np.errstate(all="ignore")  # diverged weights overflow: the caller checks the loss for non-finite values
def td_loss_and_grads(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    x: np.ndarray,
    actions: np.ndarray,
    targets: np.ndarray,
    loss: str,
    grad_w: Sequence[np.ndarray],
    grad_b: Sequence[np.ndarray],
    norms: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    grad_norms: Sequence[tuple[np.ndarray, np.ndarray]] = (),
) -> float:
    """Mean TD loss of Q(x, actions) against constant `targets`; gradients written into grad_w/grad_b.

    weights[i] has torch's Linear layout (out, in); grad arrays have the shapes of
    weights/biases and are overwritten. `norms`, if given, holds (gain, shift) of the LayerNorm of
    every hidden layer, and grad_norms receives their gradients. Returns the loss value (may be
    non-finite: the caller decides what that means).
    """
    n_layers = len(weights)
    inputs: list[np.ndarray] = []  # h_{i-1}: the input of each layer
    saved: list[tuple[np.ndarray, np.ndarray]] = []  # LayerNorm's (u, r) per hidden layer
    h = x
    for i in range(n_layers):
        inputs.append(h)
        h = h @ weights[i].T + biases[i]
        if i < n_layers - 1:
            if norms:
                h, u, r = layer_norm(h, *norms[i], axis=1)
                saved.append((u, r))
            np.maximum(h, 0.0, out=h)
    batch = int(x.shape[0])
    rows = np.arange(batch)
    value, dq = td_error_loss(h[rows, actions] - targets, loss)
    g = np.zeros_like(h)
    g[rows, actions] = dq / batch
    for i in range(n_layers - 1, -1, -1):
        np.matmul(g.T, inputs[i], out=grad_w[i])
        np.sum(g, axis=0, out=grad_b[i])
        if i > 0:
            g = g @ weights[i]
            g *= inputs[i] > 0
            if norms:
                g = layer_norm_backward(g, *saved[i - 1], norms[i - 1][0], 1, *grad_norms[i - 1])
    return value


def td_error_loss(diff: np.ndarray, loss: str) -> tuple[float, np.ndarray]:
    """Mean loss of the TD errors `diff` = Q(s, a) - y and its derivative per error (not yet / batch):
    huber (delta 1) or mse. The one loss rule of the numpy engines (MLP and conv)."""
    batch = diff.shape[0]
    if loss == "huber":
        # with c = min(|d|, 1): huber(d) = c (|d| - c/2) (0.5 d^2 inside, |d| - 0.5 outside) and
        # huber'(d) = clip(d, -1, 1); two ufuncs each instead of np.where / np.clip (5-10x the cost here)
        a = np.abs(diff)
        c = np.minimum(a, 1.0)
        return float(np.dot(c, a - 0.5 * c)) / batch, np.maximum(np.minimum(diff, 1.0), -1.0)
    if loss == "mse":
        return float(np.dot(diff, diff)) / batch, 2.0 * diff
    raise ValueError(f"unknown loss {loss!r}")


def clip_grad_norm(grads: Sequence[np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most max_norm (torch's rule:
    coefficient max_norm / (norm + 1e-6), applied only when below 1). Returns the norm before."""
    total = float(np.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads)))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return total
