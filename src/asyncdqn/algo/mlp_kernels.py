"""Compiled (numba) kernels of the MLP actor-learner's inner loop: the same math as
`algo/mlp_grad.py`, `model.NumpyMLP`, and `algo/exploration.epsilon_greedy_drawn`,
without numpy's per-call cost.

At an actor-learner's sizes (8 rows to act on, 40 to learn from, a 8-128-128-4 network) most of
numpy's time is spent between the matrix products: each ufunc, slice and temporary costs ~1-3 µs.
Here a forward pass is one call (the matrix products still go to BLAS through `np.dot`, the bias,
ReLU, argmax and loss are loops), a whole TD gradient is one call. The n-step Q worker's fused path
makes one call per env step (`record_and_act`) and one per update (`n_step_q_learn`: targets,
gradient, clip); with Q(lambda) returns (`lambda_q_targets`) or several minibatch updates per segment
it makes one call for the targets and one per update (`td_loss_and_grad`, `scale_and_clip`). (The
shared Adam step is not here: torch's fused CPU kernel, algo/optim.py, beat both numpy's ufuncs and
a compiled element loop, which LLVM cannot vectorise while the shared buffers may alias.) Measured
per 40-step LunarLander segment: benchmarks/records/learner-jit-2026-12-01/ and fused-2026-12-02/.

Parameters live in ONE flat float32 buffer (`model.flatten_parameters`) in torch's `Linear` order
[W_1 (out x in, row-major), b_1, W_2, b_2, ...]; `sizes` = [in, h_1, ..., out] gives the shapes.
Kernels are compiled on first use and cached on disk (`cache=True`), so only the first run after
an install pays the compile time (a few seconds); `warm()` compiles them ahead.

Importing this module imports numba (~0.4 s): the learners import it only when they use it.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _dense(h: np.ndarray, flat: np.ndarray, off: int, n_in: int, n_out: int, relu: bool) -> np.ndarray:
    """h @ W^T + b (then ReLU if `relu`) for the layer whose W starts at flat[off]."""
    w = flat[off:off + n_out * n_in].reshape((n_out, n_in))
    z: np.ndarray = np.dot(h, w.T)
    b0 = off + n_out * n_in
    for r in range(z.shape[0]):
        for o in range(n_out):
            s = z[r, o] + flat[b0 + o]
            z[r, o] = 0.0 if (relu and s < 0.0) else s  # NaN passes through, as np.maximum / torch
    return z


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _argmax(row: np.ndarray) -> int:
    """Index of the first maximum of a 1-D array, as np.argmax."""
    best = 0
    for j in range(1, row.shape[0]):
        if row[j] > row[best]:
            best = j
    return best


@numba.njit(cache=True, nogil=True, boundscheck=False)
def forward(flat: np.ndarray, sizes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Q-values (rows, out) of the MLP in `flat` for observations x (rows, in), float32."""
    h = x
    off = 0
    n_layers = sizes.shape[0] - 1
    for layer in range(n_layers):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        h = _dense(h, flat, off, n_in, n_out, layer < n_layers - 1)
        off += n_out * n_in + n_out
    return h


@numba.njit(cache=True, nogil=True, boundscheck=False)
def act_drawn(flat: np.ndarray, sizes: np.ndarray, x: np.ndarray, eps: np.ndarray, uniforms: np.ndarray,
              random_actions: np.ndarray) -> np.ndarray:
    """epsilon_greedy_drawn(forward(x), ...): row k takes random_actions[k] iff uniforms[k] < eps[k],
    else its greedy action (the first maximum, as argmax)."""
    q = forward(flat, sizes, x)
    actions = np.empty(q.shape[0], np.int64)
    for k in range(q.shape[0]):
        if uniforms[k] < eps[k]:
            actions[k] = random_actions[k]
        else:
            actions[k] = _argmax(q[k])
    return actions


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _td_output_grad(q: np.ndarray, actions: np.ndarray, targets: np.ndarray, huber: bool) -> tuple[float, np.ndarray]:
    """The TD loss summed over the batch (float64; huber with delta 1, else squared error) and
    dloss/dQ of the mean loss, non-zero only at the taken actions."""
    batch = q.shape[0]
    g = np.zeros_like(q)
    loss = 0.0
    for r in range(batch):
        d = q[r, actions[r]] - targets[r]
        if huber:
            a = abs(d)
            c = min(a, 1.0)
            loss += c * (a - 0.5 * c)
            g[r, actions[r]] = max(min(d, 1.0), -1.0) / batch
        else:
            loss += d * d
            g[r, actions[r]] = 2.0 * d / batch
    return loss, g


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _dense_grad(g: np.ndarray, h_in: np.ndarray, grad: np.ndarray, off: int, n_in: int, n_out: int) -> None:
    """A dense layer's dW = g^T h_in and db = column sums of g, written into `grad` at `off`."""
    gw = grad[off:off + n_out * n_in].reshape((n_out, n_in))
    np.dot(g.T, h_in, gw)
    b0 = off + n_out * n_in
    for o in range(n_out):
        s = np.float32(0.0)
        for r in range(g.shape[0]):
            s += g[r, o]
        grad[b0 + o] = s


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _through_dense_relu(g: np.ndarray, h_in: np.ndarray, flat: np.ndarray, off: int, n_in: int,
                        n_out: int) -> np.ndarray:
    """The gradient at a dense layer's input: through W, then ReLU' of the layer below (0 where
    its unit was off, as torch)."""
    w = flat[off:off + n_out * n_in].reshape((n_out, n_in))
    g_in: np.ndarray = np.dot(g, w)
    for r in range(g.shape[0]):
        for i in range(n_in):
            if not h_in[r, i] > 0.0:
                g_in[r, i] = 0.0
    return g_in


@numba.njit(cache=True, nogil=True, boundscheck=False)
def td_loss_and_grad(flat: np.ndarray, sizes: np.ndarray, x: np.ndarray, actions: np.ndarray,
                     targets: np.ndarray, huber: bool, grad: np.ndarray) -> float:
    """Mean TD loss of Q(x, actions) against constant targets (huber with delta 1, else squared
    error) and its gradient, written into `grad` (the flat layout of `flat`). Same math as
    `mlp_grad.td_loss_and_grads`; the loss is summed in float64. May return a non-finite loss
    (diverged weights): the caller checks."""
    batch = x.shape[0]
    n_layers = sizes.shape[0] - 1
    offsets = np.zeros(n_layers, np.int64)
    inputs = [x]  # the input of each layer
    h = x
    off = 0
    for layer in range(n_layers):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        offsets[layer] = off
        h = _dense(h, flat, off, n_in, n_out, layer < n_layers - 1)
        if layer < n_layers - 1:
            inputs.append(h)
        off += n_out * n_in + n_out

    loss, g = _td_output_grad(h, actions, targets, huber)

    for layer in range(n_layers - 1, -1, -1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        off = offsets[layer]
        h_in = inputs[layer]
        _dense_grad(g, h_in, grad, off, n_in, n_out)
        if layer > 0:
            g = _through_dense_relu(g, h_in, flat, off, n_in, n_out)
    return float(loss / batch)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def record_step(t: int, actions: np.ndarray, obs: np.ndarray, rewards: np.ndarray, terminated: np.ndarray,
                truncated: np.ndarray, act_buf: np.ndarray, obs_seq: np.ndarray, rew_buf: np.ndarray,
                term_buf: np.ndarray, done_buf: np.ndarray, ep_return: np.ndarray, ep_len: np.ndarray) -> int:
    """Step t of a segment into its buffers (a_t, s_{t+1}, r_t, terminated_t, done_t = terminated or
    truncated) and into the running episode returns and lengths: what ActorLearner's numpy path does
    with a dozen array operations. Returns how many episodes ended at this step."""
    n_ended = 0
    for k in range(actions.shape[0]):
        act_buf[t, k] = actions[k]
        r = rewards[k]
        rew_buf[t, k] = r
        term_buf[t, k] = terminated[k]
        ended = terminated[k] or truncated[k]
        done_buf[t, k] = ended
        n_ended += ended
        ep_return[k] += r
        ep_len[k] += 1
    row = obs_seq[t + 1]
    row[:] = obs
    return n_ended


@numba.njit(cache=True, nogil=True, boundscheck=False)
def n_step_returns(rewards: np.ndarray, terminated: np.ndarray, done: np.ndarray, next_values: np.ndarray,
                   gamma: np.float32) -> np.ndarray:
    """`targets.n_step_targets` (forward-view n-step returns of a (T, K) segment) in one pass, with
    the same float32 operations in the same order, so the same bits: R_t = base_t + carry_t R_{t+1},
    base_t = r_t + (gamma V_t) [ended at t, truncated], carry_t = gamma [not ended at t]."""
    n_steps, n_envs = rewards.shape
    out = np.empty_like(rewards)
    zero = np.float32(0.0)
    for k in range(n_envs):
        ret = next_values[n_steps - 1, k]
        for t in range(n_steps - 1, -1, -1):
            truncated = done[t, k] and not terminated[t, k]
            base = rewards[t, k] + ((gamma * next_values[t, k]) if truncated else zero)
            carry = zero if done[t, k] else gamma
            ret = carry * ret + base
            out[t, k] = ret
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def n_step_q_targets(target_flat: np.ndarray, online_flat: np.ndarray, sizes: np.ndarray, final_obs: np.ndarray,
                     last_obs: np.ndarray, rewards: np.ndarray, terminated: np.ndarray, done: np.ndarray,
                     gamma: np.float32, double_q: bool) -> np.ndarray:
    """n-step Q targets of a (T, K) segment of vector observations in one call: V(s') is needed only
    at truncated episode ends (from final_obs[t, k]) and at the segment's tail where the episode goes
    on (from last_obs[k]); the target net (and for double-Q the online net's argmax) runs on those
    rows alone, then `n_step_returns`. ActorLearner._n_step_targets with numpy is the reference."""
    n_steps, n_envs = rewards.shape
    n_rows = 0
    for t in range(n_steps):
        for k in range(n_envs):
            if done[t, k] and not terminated[t, k]:
                n_rows += 1
    for k in range(n_envs):
        if not done[n_steps - 1, k]:
            n_rows += 1
    next_values = np.zeros((n_steps, n_envs), np.float32)
    if n_rows:
        rows = np.empty((n_rows, last_obs.shape[1]), np.float32)
        i = 0
        for t in range(n_steps):
            for k in range(n_envs):
                if done[t, k] and not terminated[t, k]:
                    rows[i, :] = final_obs[t, k]
                    i += 1
        for k in range(n_envs):
            if not done[n_steps - 1, k]:
                rows[i, :] = last_obs[k]
                i += 1
        q = forward(target_flat, sizes, rows)
        pick = forward(online_flat, sizes, rows) if double_q else q  # whose argmax is taken
        values = np.empty(n_rows, np.float32)
        for i in range(n_rows):
            values[i] = q[i, _argmax(pick[i])]
        i = 0
        for t in range(n_steps):
            for k in range(n_envs):
                if done[t, k] and not terminated[t, k]:
                    next_values[t, k] = values[i]
                    i += 1
        for k in range(n_envs):
            if not done[n_steps - 1, k]:
                next_values[n_steps - 1, k] = values[i]
                i += 1
    return n_step_returns(rewards, terminated, done, next_values, gamma)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def lambda_returns(rewards: np.ndarray, terminated: np.ndarray, done: np.ndarray, next_values: np.ndarray,
                   gamma: float, lam: float) -> np.ndarray:
    """`targets.lambda_targets` (Peng's Q(lambda) returns of a (T, K) segment) in one pass, with the same
    float32 operations in the same order, so the same bits: G_t = base_t + carry_t G_{t+1},
    base_t = r_t + gamma (1 - lambda) V_t [not ended at t] + gamma V_t [ended at t, truncated],
    carry_t = gamma lambda [not ended at t]. gamma and lam are float64, as the Python floats numpy gets."""
    n_steps, n_envs = rewards.shape
    out = np.empty_like(rewards)
    zero = np.float32(0.0)
    g = np.float32(gamma)
    g_rest = np.float32(gamma * (1.0 - lam))
    g_lam = np.float32(gamma * lam)
    for k in range(n_envs):
        ret = next_values[n_steps - 1, k]
        for t in range(n_steps - 1, -1, -1):
            going_on = not done[t, k]
            truncated = done[t, k] and not terminated[t, k]
            base = rewards[t, k] + ((g_rest * next_values[t, k]) if going_on else zero)
            base = base + ((g * next_values[t, k]) if truncated else zero)
            carry = g_lam if going_on else zero
            ret = carry * ret + base
            out[t, k] = ret
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def lambda_q_targets(target_flat: np.ndarray, online_flat: np.ndarray, sizes: np.ndarray, final_obs: np.ndarray,
                     obs_seq: np.ndarray, rewards: np.ndarray, terminated: np.ndarray, done: np.ndarray,
                     gamma: float, lam: float, double_q: bool) -> np.ndarray:
    """Q(lambda) targets of a (T, K) segment of vector observations in one call: V(s_{t+1}) of every step
    that did not terminate, from the true next state (final_obs[t, k] where the episode was truncated,
    else obs_seq[t + 1, k]), by the target net (and for double-Q the online net's argmax) on those rows,
    then `lambda_returns`. ActorLearner._lambda_targets with numpy is the reference."""
    n_steps, n_envs = rewards.shape
    n_rows = 0
    for t in range(n_steps):
        for k in range(n_envs):
            if not terminated[t, k]:
                n_rows += 1
    next_values = np.zeros((n_steps, n_envs), np.float32)
    if n_rows:
        rows = np.empty((n_rows, obs_seq.shape[2]), np.float32)
        i = 0
        for t in range(n_steps):
            for k in range(n_envs):
                if not terminated[t, k]:
                    rows[i, :] = final_obs[t, k] if done[t, k] else obs_seq[t + 1, k]
                    i += 1
        q = forward(target_flat, sizes, rows)
        pick = forward(online_flat, sizes, rows) if double_q else q  # whose argmax is taken
        i = 0
        for t in range(n_steps):
            for k in range(n_envs):
                if not terminated[t, k]:
                    next_values[t, k] = q[i, _argmax(pick[i])]
                    i += 1
    return lambda_returns(rewards, terminated, done, next_values, gamma, lam)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def scale_and_clip(grad: np.ndarray, scale: np.float32, max_norm: float) -> float:
    """grad *= scale, then clip its L2 norm to max_norm with torch's rule (coefficient
    max_norm / (norm + 1e-6), applied only when below 1; max_norm = inf: no clipping). Returns the
    norm before clipping (`mlp_grad.clip_grad_norm` is the reference)."""
    if scale != 1.0:
        grad *= scale
    norm = np.sqrt(float(np.dot(grad, grad)))  # BLAS sdot, as the reference's np.dot
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        grad *= np.float32(coef)
    return float(norm)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def record_and_act(t: int, actions: np.ndarray, obs: np.ndarray, rewards: np.ndarray, terminated: np.ndarray,
                   truncated: np.ndarray, act_buf: np.ndarray, obs_seq: np.ndarray, rew_buf: np.ndarray,
                   term_buf: np.ndarray, done_buf: np.ndarray, ep_return: np.ndarray, ep_len: np.ndarray,
                   flat: np.ndarray, sizes: np.ndarray, eps: np.ndarray, uniforms: np.ndarray,
                   random_actions: np.ndarray) -> tuple[int, np.ndarray]:
    """`record_step`, then, if no episode ended at this step, `act_drawn` on the new observations
    (obs_seq[t + 1]): one call per env step. Returns (episodes ended, next actions); when an episode
    ended the actions are not computed (an empty array): the caller first closes the episodes (which
    may change the epsilons), then acts."""
    n_ended = record_step(t, actions, obs, rewards, terminated, truncated, act_buf, obs_seq, rew_buf, term_buf,
                          done_buf, ep_return, ep_len)
    if n_ended:
        return n_ended, np.empty(0, np.int64)
    return 0, act_drawn(flat, sizes, obs_seq[t + 1], eps, uniforms, random_actions)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def n_step_q_learn(target_flat: np.ndarray, flat: np.ndarray, sizes: np.ndarray, obs_seq: np.ndarray,
                   final_obs: np.ndarray, act_buf: np.ndarray, rewards: np.ndarray, terminated: np.ndarray,
                   done: np.ndarray, gamma: np.float32, double_q: bool, huber: bool, grad: np.ndarray,
                   scale: np.float32, max_norm: float) -> tuple[float, float]:
    """A whole n-step Q learning step of a (T, K) segment of vector observations but the optimizer's:
    `n_step_q_targets`, `td_loss_and_grad` over the T*K rows obs_seq[:T], then `scale_and_clip`, in one
    call. Returns (the loss, the largest |reward| of the segment); the gradient is left in `grad`."""
    n_steps, n_envs = rewards.shape
    y = n_step_q_targets(target_flat, flat, sizes, final_obs, obs_seq[n_steps], rewards, terminated, done, gamma,
                         double_q)
    rows = n_steps * n_envs
    loss = td_loss_and_grad(flat, sizes, obs_seq[:n_steps].reshape((rows, obs_seq.shape[2])),
                            act_buf.reshape(rows), y.reshape(rows), huber, grad)
    scale_and_clip(grad, scale, max_norm)
    max_abs = 0.0
    for t in range(n_steps):
        for k in range(n_envs):
            max_abs = max(max_abs, abs(float(rewards[t, k])))
    return loss, max_abs


# ------------------------------------------------------- MLPs with LayerNorm (--layer-norm)
# The flat layout of model.QNetwork(layer_norm=True): [W_1, b_1, gain_1, shift_1, ..., W_L, b_L]
# (a gain and a shift after the bias of every hidden layer); the math of algo/mlp_grad.py's
# layer_norm / layer_norm_backward, per row, LayerNorm eps 1e-5 (torch's).
_LN_EPS = np.float32(1e-5)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _layer_norm_relu(z: np.ndarray, flat: np.ndarray, g0: int, u: np.ndarray, r: np.ndarray) -> None:
    """z (rows, n) in place: LayerNorm of each row with gain flat[g0:g0+n] and shift flat[g0+n:g0+2n],
    then ReLU; the normalised rows go to u, 1/std per row to r (what the backward needs)."""
    n = z.shape[1]
    for row in range(z.shape[0]):
        mean = np.float32(0.0)
        for j in range(n):
            mean += z[row, j]
        mean /= n
        var = np.float32(0.0)
        for j in range(n):
            d = z[row, j] - mean
            var += d * d
        var /= n
        rstd = np.float32(1.0) / np.sqrt(var + _LN_EPS)
        r[row] = rstd
        for j in range(n):
            uj = (z[row, j] - mean) * rstd
            u[row, j] = uj
            y = flat[g0 + j] * uj + flat[g0 + n + j]
            z[row, j] = 0.0 if y < 0.0 else y  # NaN passes through, as np.maximum / torch


@numba.njit(cache=True, nogil=True, boundscheck=False)
def forward_ln(flat: np.ndarray, sizes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Q-values (rows, out) of the LayerNorm MLP in `flat` for observations x (rows, in), float32."""
    h = x
    off = 0
    n_layers = sizes.shape[0] - 1
    for layer in range(n_layers):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        h = _dense(h, flat, off, n_in, n_out, False)
        off += n_out * n_in + n_out
        if layer < n_layers - 1:
            _layer_norm_relu(h, flat, off, np.empty_like(h), np.empty(h.shape[0], np.float32))
            off += 2 * n_out
    return h


@numba.njit(cache=True, nogil=True, boundscheck=False)
def act_drawn_ln(flat: np.ndarray, sizes: np.ndarray, x: np.ndarray, eps: np.ndarray, uniforms: np.ndarray,
                 random_actions: np.ndarray) -> np.ndarray:
    """act_drawn of the LayerNorm MLP."""
    q = forward_ln(flat, sizes, x)
    actions = np.empty(q.shape[0], np.int64)
    for k in range(q.shape[0]):
        actions[k] = random_actions[k] if uniforms[k] < eps[k] else _argmax(q[k])
    return actions


@numba.njit(cache=True, nogil=True, boundscheck=False)
def td_loss_and_grad_ln(flat: np.ndarray, sizes: np.ndarray, x: np.ndarray, actions: np.ndarray,
                        targets: np.ndarray, huber: bool, grad: np.ndarray) -> float:
    """td_loss_and_grad of the LayerNorm MLP (mlp_grad.td_loss_and_grads with norms is the reference)."""
    batch = x.shape[0]
    n_layers = sizes.shape[0] - 1
    offsets = np.zeros(n_layers, np.int64)  # where each layer's W starts; its gain at W + out*in + out
    inputs = [x]  # the input of each layer (post-ReLU activations of the one below)
    us = [x]  # LayerNorm's normalised rows, per hidden layer at index layer + 1 (index 0 unused)
    rs = [np.empty(1, np.float32)]  # and its 1/std per row
    h = x
    off = 0
    for layer in range(n_layers):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        offsets[layer] = off
        h = _dense(h, flat, off, n_in, n_out, False)
        off += n_out * n_in + n_out
        if layer < n_layers - 1:
            u = np.empty_like(h)
            r = np.empty(batch, np.float32)
            _layer_norm_relu(h, flat, off, u, r)
            us.append(u)
            rs.append(r)
            inputs.append(h)
            off += 2 * n_out

    loss, g = _td_output_grad(h, actions, targets, huber)

    for layer in range(n_layers - 1, -1, -1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        off = offsets[layer]
        h_in = inputs[layer]
        _dense_grad(g, h_in, grad, off, n_in, n_out)
        if layer > 0:
            g_in = _through_dense_relu(g, h_in, flat, off, n_in, n_out)
            # then back through the LayerNorm of the layer below (its gain and shift follow its bias)
            u, r = us[layer], rs[layer]
            g0 = offsets[layer - 1] + n_in * sizes[layer - 1] + n_in
            for i in range(n_in):
                sg = np.float32(0.0)
                ss = np.float32(0.0)
                for row in range(batch):
                    sg += g_in[row, i] * u[row, i]
                    ss += g_in[row, i]
                grad[g0 + i] = sg
                grad[g0 + n_in + i] = ss
            for row in range(batch):
                m1 = np.float32(0.0)
                m2 = np.float32(0.0)
                for i in range(n_in):
                    gx = g_in[row, i] * flat[g0 + i]
                    g_in[row, i] = gx
                    m1 += gx
                    m2 += gx * u[row, i]
                m1 /= n_in
                m2 /= n_in
                for i in range(n_in):
                    g_in[row, i] = r[row] * (g_in[row, i] - m1 - u[row, i] * m2)
            g = g_in
    return float(loss / batch)


def layer_sizes(weight_shapes: list[tuple[int, ...]]) -> np.ndarray:
    """[in, h_1, ..., out] of an MLP from its weights' (out, in) shapes; ValueError if they do not chain."""
    sizes = [weight_shapes[0][1]]
    for shape in weight_shapes:
        if len(shape) != 2 or shape[1] != sizes[-1]:
            raise ValueError(f"weights of shapes {weight_shapes} are not a chain of dense layers")
        sizes.append(shape[0])
    return np.array(sizes, dtype=np.int64)


def warm() -> None:
    """Compile (or load from the disk cache) every kernel for the types the learners pass."""
    sizes = np.array([2, 3, 2], dtype=np.int64)
    flat = np.zeros(2 * 3 + 3 + 3 * 2 + 2, dtype=np.float32)
    x = np.zeros((2, 2), dtype=np.float32)
    forward(flat, sizes, x)
    act_drawn(flat, sizes, x, np.zeros(2), np.zeros(2), np.zeros(2, dtype=np.int64))
    td_loss_and_grad(flat, sizes, x, np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.float32), True,
                     np.zeros_like(flat))
    flags = np.zeros((2, 2), dtype=bool)
    n_step_returns(x, flags, flags, x, np.float32(0.9))
    n_step_q_targets(flat, flat, sizes, np.zeros((2, 2, 2), dtype=np.float32), x, x, flags, flags, np.float32(0.9),
                     True)
    lambda_returns(x, flags, flags, x, 0.9, 0.65)
    lambda_q_targets(flat, flat, sizes, np.zeros((2, 2, 2), dtype=np.float32), np.zeros((3, 2, 2), dtype=np.float32),
                     x, flags, flags, 0.9, 0.65, True)
    scale_and_clip(flat.copy(), np.float32(1.0), 1.0)
    actions = np.zeros(2, dtype=np.int64)
    record_and_act(0, actions, x, np.zeros(2, dtype=np.float32), flags[0], flags[0], np.zeros((1, 2), dtype=np.int64),
                   np.zeros((2, 2, 2), dtype=np.float32), np.zeros((1, 2), dtype=np.float32), flags, flags, np.zeros(2),
                   actions.copy(), flat, sizes, np.zeros(2), np.zeros(2), actions.copy())
    n_step_q_learn(flat, flat, sizes, np.zeros((3, 2, 2), dtype=np.float32), np.zeros((2, 2, 2), dtype=np.float32),
                   np.zeros((2, 2), dtype=np.int64), x, flags, flags, np.float32(0.9), True, True, flat.copy(),
                   np.float32(1.0), 1.0)
    ln_flat = np.zeros(2 * 3 + 3 + 2 * 3 + 3 * 2 + 2, dtype=np.float32)  # with LayerNorm: + gain, shift
    forward_ln(ln_flat, sizes, x)
    act_drawn_ln(ln_flat, sizes, x, np.zeros(2), np.zeros(2), np.zeros(2, dtype=np.int64))
    td_loss_and_grad_ln(ln_flat, sizes, x, np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.float32), True,
                        np.zeros_like(ln_flat))
    for obs_dtype in (np.float32, np.uint8):  # vector observations, and images kept as uint8
        record_step(0, actions, np.zeros((2, 2), dtype=obs_dtype), np.zeros(2, dtype=np.float32), flags[0],
                    flags[0], np.zeros((1, 2), dtype=np.int64), np.zeros((2, 2, 2), dtype=obs_dtype),
                    np.zeros((1, 2), dtype=np.float32), flags, flags, np.zeros(2), actions.copy())


if __name__ == "__main__":  # `python -m asyncdqn.algo.mlp_kernels`: the Makefile compiles the kernels at install
    warm()
