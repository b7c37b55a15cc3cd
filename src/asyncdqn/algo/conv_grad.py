"""Forward and TD-loss gradient of a conv Q-network (model.ConvQNetwork), by hand, in numpy.

The MinAtar network (conv 16 3x3 on (C, 10, 10), fc 128) is small enough that torch's per-call
work (dispatch, autograd graph, the conv primitive's setup) costs as much as the arithmetic
at an actor-learner's batch sizes (K ~ 8-16 rows to act, T*K ~ 40-80 to learn). Here the
same network is a handful of matrix products. Same math as the torch module:

    x = obs / 255 (in the parameters' dtype, as ConvQNetwork.forward)
    conv l:  z = W_l * x + b_l  (valid, stride s_l),  x = relu(z)
    flatten (channel, row, column), then the MLP of algo/mlp_grad.py:
    h_i = relu(W_i h_{i-1} + b_i) (i < L),  Q = W_L h_{L-1} + b_L
    loss = mean_b l(Q[b, a_b] - y_b),  l = huber (delta 1) or squared error

Layout: every activation is kept feature-major with the batch innermost, an image batch as
(C, H, W, B) and a vector batch as (features, B). Then

- im2col of a conv layer is kh*kw strided slice copies (one per kernel offset, never one per
  pixel) into cols (C, kh, kw, OH, OW, B), and the convolution is one matrix product
  W (O, C*kh*kw) @ cols (C*kh*kw, OH*OW*B) -> (O, OH*OW*B), which read as (O*OH*OW, B) is
  already torch's Flatten order: no transpose between the conv and the fully connected layers;
- the fully connected layers are W (out, in) @ h (in, B) on torch's own weight layout, and the
  weight gradients g (out, B) @ h^T (B, in) land in that layout too. (With the batch first,
  h @ W^T on the shared (128, 1024) weight ran ~2x slower in OpenBLAS at 8 rows.)

Backward, with g the gradient of the layer's output (relu'(0) = 0, as torch):

    dQ[a_b, b] = l'(Q[a_b, b] - y_b) / B,   huber: clip(d, -1, 1),  mse: 2 d
    linear: dW = g h_in^T,  db = sum_b g,  g_in = (W^T g) * [h_in > 0]
    conv:   dW = g cols^T,  db = sum g over pixels and batch,
            g_cols = W^T g, added back onto the input's pixels (col2im, one strided add per
            kernel offset) and masked by [x_in > 0]; not needed below the first conv.

With LayerNorm (ConvQNetwork(layer_norm=True)), every conv output z (O, OH, OW, B), read as
(O*OH*OW, B), and the hidden dense layer's z (out, B) are normalised per sample over their
features (axis 0) with learnable gain and shift before the ReLU: algo/mlp_grad.py's layer_norm
and layer_norm_backward, in this layout.

`tests/algo/test_conv_grad.py` checks forward and gradients against the torch module and
autograd, and against float64 finite differences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asyncdqn.algo.mlp_grad import layer_norm, layer_norm_backward, td_error_loss


def _out_size(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def _im2col(x: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """(C, H, W, B) -> (C*kh*kw, OH*OW*B): row (c, i, j) holds x[c, i + sh*r, j + sw*q, b] at column (r, q, b)."""
    c, h, w, b = x.shape
    oh, ow = _out_size(h, kh, sh), _out_size(w, kw, sw)
    cols = np.empty((c, kh, kw, oh, ow, b), dtype=x.dtype)
    for i in range(kh):  # one strided copy per kernel offset, all pixels and samples at once
        for j in range(kw):
            cols[:, i, j] = x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
    return cols.reshape(c * kh * kw, oh * ow * b)


def _col2im(cols: np.ndarray, shape: tuple[int, ...], kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """The adjoint of _im2col: every column entry added back onto the input pixel it was copied from."""
    c, h, w, b = shape
    oh, ow = _out_size(h, kh, sh), _out_size(w, kw, sw)
    g6 = cols.reshape(c, kh, kw, oh, ow, b)
    out = np.zeros(shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += g6[:, i, j]
    return out


class NumpyConvQ:
    """Q-values and the TD-loss gradient of a ConvQNetwork over a list of numpy parameter arrays.

    `arrays` are in model.parameters() order: (weight (O, C, kh, kw), bias) per conv layer, then
    (weight (out, in), bias) per linear layer; with `layer_norm`, every layer but the last also has
    its LayerNorm's (gain, shift) after its bias. `strides` gives (sh, sw) per conv layer (no
    padding, no dilation). The arrays may be views of shared torch parameters: read in place,
    Hogwild-style, like the torch forward of the shared module.
    """

    def __init__(self, arrays: Sequence[np.ndarray], strides: Sequence[tuple[int, int]],
                 layer_norm: bool = False) -> None:
        n_conv = len(strides)
        per = 4 if layer_norm else 2  # arrays per layer but the last
        n_layers = (len(arrays) - 2) // per + 1
        if n_conv < 1 or len(arrays) < 2 or (len(arrays) - 2) % per or n_layers < n_conv + 1:
            raise ValueError("expected (weight, bias) pairs" + (", each but the last followed by (gain, shift)"
                             if layer_norm else "") + ": one per conv layer, then at least one linear layer")
        # per layer: the indices of its (weight, bias) and of its LayerNorm's (gain, shift) (None if it has none)
        self._idx: list[tuple[int, int, tuple[int, int] | None]] = [
            (per * i, per * i + 1, (per * i + 2, per * i + 3) if layer_norm and i < n_layers - 1 else None)
            for i in range(n_layers)]
        for i, (wi, _, _) in enumerate(self._idx):
            if arrays[wi].ndim != (4 if i < n_conv else 2):
                raise ValueError(f"layer {i}: weight of shape {arrays[wi].shape} does not fit {n_conv} conv layers")
        self.arrays = list(arrays)
        self.strides = [(int(sh), int(sw)) for sh, sw in strides]
        self.n_conv = n_conv
        self.layer_norm = layer_norm
        self.dtype = arrays[0].dtype
        self._scale = self.dtype.type(255)

    def _input(self, obs: np.ndarray) -> np.ndarray:
        """(B, C, H, W) observations -> (C, H, W, B) in the parameters' dtype, divided by 255 in that
        dtype (what ConvQNetwork.forward does: obs.to(dtype) / 255)."""
        x = np.empty((*obs.shape[1:], obs.shape[0]), dtype=self.dtype)
        x[...] = obs.transpose(1, 2, 3, 0)  # exact: uint8 -> float
        x /= self._scale
        return x

    def _norm(self, z: np.ndarray, layer: int, norms: list[tuple[np.ndarray, np.ndarray]] | None) -> np.ndarray:
        """z (features, B) through the layer's LayerNorm, if it has one (its (u, r) kept in `norms`)."""
        ln = self._idx[layer][2]
        if ln is None:
            return z
        y, u, r = layer_norm(z, self.arrays[ln[0]], self.arrays[ln[1]], axis=0)
        if norms is not None:
            norms.append((u, r))
        return y

    def _forward(self, obs: np.ndarray, keep: list[np.ndarray] | None,
                 norms: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
        """Q-values as (actions, B). With `keep`, appends what backward needs: per conv layer its
        input (C, H, W, B) and its cols, then per linear layer its input (in, B); with `norms`, every
        LayerNorm's (u, r) in layer order."""
        x = self._input(obs)
        batch = obs.shape[0]
        arrays = self.arrays
        for layer, (sh, sw) in enumerate(self.strides):
            wi, bi, _ = self._idx[layer]
            w, b = arrays[wi], arrays[bi]
            o, _, kh, kw = w.shape
            cols = _im2col(x, kh, kw, sh, sw)
            if keep is not None:
                keep += [x, cols]
            z = w.reshape(o, -1) @ cols  # (O, OH*OW*B)
            z += b[:, None]
            oh, ow = _out_size(x.shape[1], kh, sh), _out_size(x.shape[2], kw, sw)
            if self.layer_norm:  # over each sample's (O, OH, OW)
                z = self._norm(z.reshape(-1, batch), layer, norms)
            np.maximum(z, 0.0, out=z)
            x = z.reshape(o, oh, ow, batch)
        h = x.reshape(-1, batch)  # torch's Flatten order: (channel, row, column)
        n_layers = len(self._idx)
        for layer in range(self.n_conv, n_layers):
            if keep is not None:
                keep.append(h)
            wi, bi, _ = self._idx[layer]
            h = arrays[wi] @ h
            h += arrays[bi][:, None]
            if layer < n_layers - 1:
                h = self._norm(h, layer, norms)
                np.maximum(h, 0.0, out=h)
        return h

    @np.errstate(all="ignore")  # diverged weights overflow: the caller checks for non-finite values
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Q-values (B, actions) of a batch of (C, H, W) observations, no gradient."""
        return np.ascontiguousarray(self._forward(obs, None).T)

    def _norm_backward(self, g: np.ndarray, layer: int, norms: list[tuple[np.ndarray, np.ndarray]],
                       grads: Sequence[np.ndarray]) -> np.ndarray:
        """g (features, B) back through the layer's LayerNorm, if it has one (gain/shift gradients into grads)."""
        ln = self._idx[layer][2]
        if ln is None:
            return g
        u, r = norms[layer]
        return layer_norm_backward(g, u, r, self.arrays[ln[0]], 0, grads[ln[0]], grads[ln[1]])

    @np.errstate(all="ignore")
    def loss_and_grads(self, obs: np.ndarray, actions: np.ndarray, targets: np.ndarray, loss: str,
                       grads: Sequence[np.ndarray]) -> float:
        """Mean TD loss of Q(obs, actions) against constant `targets`; the gradient of every array
        written into `grads` (same shapes and order, overwritten). Returns the loss value (may be
        non-finite: the caller decides what that means)."""
        keep: list[np.ndarray] = []
        norms: list[tuple[np.ndarray, np.ndarray]] = []  # one per layer but the last, with LayerNorm
        q = self._forward(obs, keep, norms)  # (A, B)
        batch = obs.shape[0]
        cols_idx = np.arange(batch)
        value, dq = td_error_loss(q[actions, cols_idx] - targets, loss)
        g = np.zeros_like(q)
        g[actions, cols_idx] = dq / batch
        arrays = self.arrays
        n_layers = len(self._idx)
        for layer in range(n_layers - 1, self.n_conv - 1, -1):  # linear layers, last first
            h_in = keep[self.n_conv + layer]  # after the 2 entries per conv layer, one per linear layer
            wi, bi, _ = self._idx[layer]
            w = arrays[wi]
            np.matmul(g, h_in.T, out=grads[wi])
            np.sum(g, axis=1, out=grads[bi])
            g = w.T @ g
            g *= h_in > 0  # below the first linear layer: the flattened relu output of the last conv
            g = self._norm_backward(g, layer - 1, norms, grads)
        for layer in range(self.n_conv - 1, -1, -1):  # conv layers
            x_in, cols = keep[2 * layer], keep[2 * layer + 1]
            wi, bi, _ = self._idx[layer]
            w = arrays[wi]
            o = w.shape[0]
            g = g.reshape(o, -1)  # (O, OH*OW*B)
            # dW = g cols^T, computed as (cols g^T)^T: OpenBLAS is ~1.5x faster on that shape (long
            # inner dimension OH*OW*B, tiny output), and the (C*kh*kw, O) result is copied over.
            np.copyto(grads[wi].reshape(o, -1), (cols @ g.T).T)
            np.sum(g, axis=1, out=grads[bi])
            if layer > 0:
                sh, sw = self.strides[layer]
                g = _col2im(w.reshape(o, -1).T @ g, x_in.shape, w.shape[2], w.shape[3], sh, sw)
                g *= x_in > 0
                if self.layer_norm:
                    g = self._norm_backward(g.reshape(-1, batch), layer - 1, norms, grads)
        return value
