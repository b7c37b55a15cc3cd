"""TD targets for the three asynchronous algorithms, and the TD loss.

Shapes: a segment holds T steps of K environments, so per-step arrays are (T, K).
`next_values[t, k]` is the bootstrap value V(s_{t+1}) of the state that step t led
to: the *true* next state, i.e. the final observation of an episode that ended at
step t (before the auto-reset), not the first observation of the next episode.

Termination and truncation differ: a terminated step has no future (V = 0); a
truncated step (time limit) still bootstraps from V(final observation).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def greedy_values(q_target_next: np.ndarray) -> np.ndarray:
    """Q-learning bootstrap: max_a Q_target(s', a). Input (..., A) -> (...)."""
    return np.asarray(q_target_next.max(axis=-1))


def double_q_values(q_target_next: np.ndarray, q_online_next: np.ndarray) -> np.ndarray:
    """Double-Q bootstrap: Q_target(s', argmax_a Q_online(s', a))."""
    best = q_online_next.argmax(axis=-1)
    return np.take_along_axis(q_target_next, best[..., None], axis=-1)[..., 0]


def sarsa_values(q_target_next: np.ndarray, next_actions: np.ndarray) -> np.ndarray:
    """Sarsa bootstrap: Q_target(s', a') for the action a' the policy took in s'."""
    return np.take_along_axis(q_target_next, next_actions[..., None].astype(np.int64), axis=-1)[..., 0]


def one_step_targets(
    rewards: np.ndarray, terminated: np.ndarray, next_values: np.ndarray, gamma: float
) -> np.ndarray:
    """y_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1})  (paper Alg. 1; Sarsa with V = Q(s', a'))."""
    return np.asarray(rewards + gamma * (1.0 - terminated.astype(rewards.dtype)) * next_values)


def n_step_targets(
    rewards: np.ndarray,
    terminated: np.ndarray,
    done: np.ndarray,
    next_values: np.ndarray,
    gamma: float,
) -> np.ndarray:
    """Forward-view n-step returns of paper Alg. 3, for a (T, K) segment.

    Step t gets R_t = r_t + gamma r_{t+1} + ... + gamma^{m-1} r_{t+m-1} + gamma^m V(s_{t+m}),
    where t+m is the end of the segment or the first step at which the episode
    ended, whichever comes first. At an episode end the bootstrap is
    (1 - terminated) * V(final observation): zero when terminated, the value of
    the final state when truncated. So the last step uses a 1-step return and
    the first a T-step return.
    """
    T = rewards.shape[0]
    # R_t = base_t + carry_t * R_{t+1}: where the episode ended at t, base_t is its 1-step return
    # r_t + gamma (1 - terminated_t) V_t and carry_t = 0 (the return restarts); elsewhere base_t = r_t
    # and carry_t = gamma. Built for the whole segment at once: the loop is one multiply-add a step.
    base = rewards + (gamma * next_values) * (done & ~terminated)
    carry = gamma * (~done).astype(rewards.dtype)
    out: np.ndarray = np.empty_like(base)
    ret = next_values[T - 1]  # V(s_T): bootstrap of the segment's tail (carry 0 if it ended there)
    for t in range(T - 1, -1, -1):
        ret = np.multiply(carry[t], ret, out=out[t])
        ret += base[t]
    return out


def lambda_targets(
    rewards: np.ndarray,
    terminated: np.ndarray,
    done: np.ndarray,
    next_values: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """Peng's Q(lambda) returns of a (T, K) segment, by PQN's backward recursion.

    G_t = r_t + gamma [(1 - lambda) V(s_{t+1}) + lambda G_{t+1}]   inside an episode,
    G_t = r_t + gamma (1 - terminated_t) V(final observation)     where the episode ended at t,
    G_{T-1} = r_{T-1} + gamma V(s_T)                              at the segment's end (G_T = V(s_T)).

    Unlike `n_step_targets` it reads V(s_{t+1}) at every step that did not terminate.
    lambda = 1 gives `n_step_targets` (the same bits), lambda = 0 `one_step_targets`.
    """
    T = rewards.shape[0]
    # G_t = base_t + carry_t * G_{t+1}: inside an episode base_t = r_t + gamma (1 - lambda) V_t and
    # carry_t = gamma lambda; where the episode ended at t, the 1-step return and carry 0 (as in
    # n_step_targets). With lambda = 1 the first term adds an exact zero: n_step_targets' bits.
    going_on = (~done).astype(rewards.dtype)
    base = rewards + ((gamma * (1.0 - lam)) * next_values) * going_on
    base += (gamma * next_values) * (done & ~terminated)
    carry = (gamma * lam) * going_on
    out: np.ndarray = np.empty_like(base)
    ret = next_values[T - 1]  # G_T = V(s_T)
    for t in range(T - 1, -1, -1):
        ret = np.multiply(carry[t], ret, out=out[t])
        ret += base[t]
    return out


def td_loss(q_taken: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean TD loss between Q(s_t, a_t) and the (constant) targets: huber (delta 1) or mse."""
    if kind == "huber":
        return F.smooth_l1_loss(q_taken, targets, beta=1.0)
    if kind == "mse":
        return F.mse_loss(q_taken, targets)
    raise ValueError(f"unknown loss {kind!r}")
