"""TD targets and loss (asyncdqn.algo.targets) against hand-computed values.

Every expected number is worked out by hand in a comment and written as a
literal; nothing re-implements the formulas under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asyncdqn.algo.targets import (
    double_q_values,
    greedy_values,
    lambda_targets,
    n_step_targets,
    one_step_targets,
    sarsa_values,
    td_loss,
)

F, T_ = False, True


def col(*xs: float) -> np.ndarray:
    """A (T, 1) float32 column: one environment, T steps."""
    return np.array(xs, dtype=np.float32)[:, None]


def bcol(*xs: bool) -> np.ndarray:
    return np.array(xs, dtype=bool)[:, None]


# ----------------------------------------------------------------- bootstraps
def test_greedy_values_is_max_over_last_axis():
    q = np.array([[1.0, 5.0, 3.0], [7.0, 2.0, 0.0]])
    np.testing.assert_array_equal(greedy_values(q), [5.0, 7.0])
    # (T=2, K=1, A=2) -> (T, K)
    q3 = np.array([[[0.0, -1.0]], [[-3.0, -2.0]]])
    out = greedy_values(q3)
    assert out.shape == (2, 1)
    np.testing.assert_array_equal(out, [[0.0], [-2.0]])


def test_double_q_takes_target_value_at_online_argmax():
    q_target = np.array([[1.0, 5.0, 3.0], [7.0, 2.0, 0.0]])
    q_online = np.array([[0.0, 0.0, 9.0], [1.0, 0.0, 0.0]])
    # online argmax: row 0 -> action 2, row 1 -> action 0
    # row 0: Q_target[2] = 3 (the plain max would be 5: the two rules differ here)
    # row 1: Q_target[0] = 7 (coincides with the max)
    np.testing.assert_array_equal(double_q_values(q_target, q_online), [3.0, 7.0])
    assert not np.array_equal(double_q_values(q_target, q_online), greedy_values(q_target))


def test_double_q_batched_shape():
    q_target = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # (T=1, K=2, A=2)
    q_online = np.array([[[5.0, 0.0], [0.0, 5.0]]])  # argmax: 0, 1
    out = double_q_values(q_target, q_online)
    assert out.shape == (1, 2)
    np.testing.assert_array_equal(out, [[1.0, 4.0]])


def test_sarsa_takes_q_of_next_action():
    q = np.array([[1.0, 5.0, 3.0], [7.0, 2.0, 0.0]])
    np.testing.assert_array_equal(sarsa_values(q, np.array([0, 1])), [1.0, 2.0])
    np.testing.assert_array_equal(sarsa_values(q, np.array([2, 2])), [3.0, 0.0])
    # (T=2, K=1, A=3) with int64 actions of shape (T, K)
    q3 = q[:, None, :]
    out = sarsa_values(q3, np.array([[2], [1]], dtype=np.int64))
    assert out.shape == (2, 1)
    np.testing.assert_array_equal(out, [[3.0], [2.0]])


# ----------------------------------------------------------------- one-step
def test_one_step_neither_terminated_truncated():
    # Three envs, one step each, gamma 0.9, V(next) = [4, 5, 6]:
    #   env 0: episode continues          -> 1 + 0.9*4 = 4.6
    #   env 1: terminated (no future)     -> 2
    #   env 2: truncated: bootstraps from V(final obs) = 6 -> 3 + 0.9*6 = 8.4
    # (truncation is *not* termination: terminated=False for it)
    r = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    term = np.array([False, True, False])
    v = np.array([4.0, 5.0, 6.0], dtype=np.float32)
    np.testing.assert_allclose(one_step_targets(r, term, v, 0.9), [4.6, 2.0, 8.4], rtol=1e-6)


def test_one_step_gamma_zero_and_one():
    r = np.array([1.0, 2.0], dtype=np.float32)
    term = np.array([False, True])
    v = np.array([10.0, 10.0], dtype=np.float32)
    np.testing.assert_allclose(one_step_targets(r, term, v, 0.0), [1.0, 2.0])
    np.testing.assert_allclose(one_step_targets(r, term, v, 1.0), [11.0, 2.0])


# ------------------------------------------------------------------- n-step
# A T=3 segment with rewards r = [1, 2, 4] and next values V(s_1), V(s_2), V(s_3)
# = [10, 20, 8], gamma = 0.5, in several end-of-episode situations.
R3 = (1.0, 2.0, 4.0)
V3 = (10.0, 20.0, 8.0)


def test_n_step_no_episode_end():
    # R_2 = 4 + 0.5*8 = 8
    # R_1 = 2 + 0.5*R_2 = 6
    # R_0 = 1 + 0.5*R_1 = 4   (= 1 + .5*2 + .25*4 + .125*8: the full 3-step return)
    # V(s_1), V(s_2) (10, 20) must not be used.
    out = n_step_targets(col(*R3), bcol(F, F, F), bcol(F, F, F), col(*V3), 0.5)
    np.testing.assert_allclose(out, col(4.0, 6.0, 8.0), rtol=1e-6)


def test_n_step_terminated_mid_segment():
    # Episode terminates at t=1 (no bootstrap through its end), a new one starts at t=2.
    # R_2 = 4 + 0.5*8 = 8
    # R_1 = 2                  (terminated: no future)
    # R_0 = 1 + 0.5*2 = 2      (must not include r_2 nor V(s_3))
    out = n_step_targets(col(*R3), bcol(F, T_, F), bcol(F, T_, F), col(*V3), 0.5)
    np.testing.assert_allclose(out, col(2.0, 2.0, 8.0), rtol=1e-6)


def test_n_step_truncated_mid_segment():
    # Episode truncated at t=1: bootstrap from V(final obs of t=1) = next_values[1] = 20.
    # R_2 = 4 + 0.5*8 = 8
    # R_1 = 2 + 0.5*20 = 12
    # R_0 = 1 + 0.5*12 = 7
    out = n_step_targets(col(*R3), bcol(F, F, F), bcol(F, T_, F), col(*V3), 0.5)
    np.testing.assert_allclose(out, col(7.0, 12.0, 8.0), rtol=1e-6)


def test_n_step_terminated_at_last_step():
    # R_2 = 4 (terminated: V(s_3)=8 ignored); R_1 = 2 + 0.5*4 = 4; R_0 = 1 + 0.5*4 = 3
    out = n_step_targets(col(*R3), bcol(F, F, T_), bcol(F, F, T_), col(*V3), 0.5)
    np.testing.assert_allclose(out, col(3.0, 4.0, 4.0), rtol=1e-6)


def test_n_step_truncated_at_last_step():
    # Truncated at the tail: bootstrap from V(final obs) = 8, as with no end at all.
    # R_2 = 4 + 0.5*8 = 8; R_1 = 6; R_0 = 4
    out = n_step_targets(col(*R3), bcol(F, F, F), bcol(F, F, T_), col(*V3), 0.5)
    np.testing.assert_allclose(out, col(4.0, 6.0, 8.0), rtol=1e-6)


def test_n_step_two_episode_ends_in_one_segment():
    # Terminated at t=0 and at t=2.
    # R_2 = 4; R_1 = 2 + 0.5*4 = 4; R_0 = 1
    out = n_step_targets(col(*R3), bcol(T_, F, T_), bcol(T_, F, T_), col(*V3), 0.5)
    np.testing.assert_allclose(out, col(1.0, 4.0, 4.0), rtol=1e-6)


def test_n_step_terminated_then_truncated():
    # Terminated at t=0, truncated at t=1, continuing at t=2.
    # R_2 = 4 + 0.5*8 = 8; R_1 = 2 + 0.5*20 = 12; R_0 = 1
    out = n_step_targets(col(*R3), bcol(T_, F, F), bcol(T_, T_, F), col(*V3), 0.5)
    np.testing.assert_allclose(out, col(1.0, 12.0, 8.0), rtol=1e-6)


def test_n_step_columns_are_independent():
    # The four situations above as K=4 environments of one (T=3, K=4) segment.
    r = np.array([R3] * 4, dtype=np.float32).T
    v = np.array([V3] * 4, dtype=np.float32).T
    term = np.array([[F, F, F], [F, T_, F], [F, F, F], [F, F, T_]]).T
    done = np.array([[F, F, F], [F, T_, F], [F, T_, F], [F, F, T_]]).T
    expected = np.array([
        [4.0, 6.0, 8.0],   # no end
        [2.0, 2.0, 8.0],   # terminated at t=1
        [7.0, 12.0, 8.0],  # truncated at t=1
        [3.0, 4.0, 4.0],   # terminated at t=2
    ], dtype=np.float32).T
    out = n_step_targets(r, term, done, v, 0.5)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_n_step_t4_gamma_09():
    # T=4, rewards [1, 2, 3, 4], tail value V(s_4) = 10, gamma 0.9, no end:
    # R_3 = 4 + 0.9*10    = 13
    # R_2 = 3 + 0.9*13    = 14.7
    # R_1 = 2 + 0.9*14.7  = 15.23
    # R_0 = 1 + 0.9*15.23 = 14.707
    out = n_step_targets(col(1, 2, 3, 4), bcol(F, F, F, F), bcol(F, F, F, F), col(-50, -50, -50, 10), 0.9)
    np.testing.assert_allclose(out, col(14.707, 15.23, 14.7, 13.0), rtol=1e-6)


def test_n_step_with_t1_equals_one_step():
    # T=1, K=3: the same three cases as test_one_step_neither_terminated_truncated:
    # [1 + 0.9*4, 2, 3 + 0.9*6] = [4.6, 2, 8.4]
    r = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    term = np.array([[False, True, False]])
    done = np.array([[False, True, True]])  # env 2 truncated
    v = np.array([[4.0, 5.0, 6.0]], dtype=np.float32)
    out = n_step_targets(r, term, done, v, 0.9)
    np.testing.assert_allclose(out, [[4.6, 2.0, 8.4]], rtol=1e-6)
    np.testing.assert_allclose(out, one_step_targets(r, term, v, 0.9), rtol=1e-6)


def test_n_step_does_not_modify_inputs_and_keeps_dtype():
    r, v = col(*R3), col(*V3)
    term, done = bcol(F, T_, F), bcol(F, T_, F)
    copies = [a.copy() for a in (r, term, done, v)]
    out = n_step_targets(r, term, done, v, 0.5)
    for a, c in zip((r, term, done, v), copies, strict=True):
        np.testing.assert_array_equal(a, c)
    assert out.dtype == np.float32


# ------------------------------------------------------------- Q(lambda)
# The same T=3 segment (r = [1, 2, 4], V = [10, 20, 8], gamma 0.5), lambda 0.5:
# G_t = r_t + 0.5 * (0.5 V_{t+1} + 0.5 G_{t+1}) inside an episode; the tail G_2 = r_2 + 0.5 V(s_3).
def test_lambda_no_episode_end():
    # G_2 = 4 + 0.5*8 = 8
    # G_1 = 2 + 0.5*(0.5*20 + 0.5*8) = 2 + 0.5*14 = 9
    # G_0 = 1 + 0.5*(0.5*10 + 0.5*9) = 1 + 0.5*9.5 = 5.75
    out = lambda_targets(col(*R3), bcol(F, F, F), bcol(F, F, F), col(*V3), 0.5, 0.5)
    np.testing.assert_allclose(out, col(5.75, 9.0, 8.0), rtol=1e-6)


def test_lambda_terminated_mid_segment():
    # G_2 = 8; G_1 = 2 (terminated: no future); G_0 = 1 + 0.5*(0.5*10 + 0.5*2) = 4
    out = lambda_targets(col(*R3), bcol(F, T_, F), bcol(F, T_, F), col(*V3), 0.5, 0.5)
    np.testing.assert_allclose(out, col(4.0, 2.0, 8.0), rtol=1e-6)


def test_lambda_truncated_mid_segment():
    # Truncated at t=1: G_1 = 2 + 0.5*V(final obs) = 2 + 0.5*20 = 12 (no lambda-mix across the end)
    # G_0 = 1 + 0.5*(0.5*10 + 0.5*12) = 6.5; G_2 = 8
    out = lambda_targets(col(*R3), bcol(F, F, F), bcol(F, T_, F), col(*V3), 0.5, 0.5)
    np.testing.assert_allclose(out, col(6.5, 12.0, 8.0), rtol=1e-6)


def test_lambda_terminated_at_last_step():
    # G_2 = 4 (V(s_3) ignored); G_1 = 2 + 0.5*(0.5*20 + 0.5*4) = 8; G_0 = 1 + 0.5*(0.5*10 + 0.5*8) = 5.5
    out = lambda_targets(col(*R3), bcol(F, F, T_), bcol(F, F, T_), col(*V3), 0.5, 0.5)
    np.testing.assert_allclose(out, col(5.5, 8.0, 4.0), rtol=1e-6)


def test_lambda_065_gamma_09():
    # T=2, r = [1, 1], V(s_1) = 2, V(s_2) = 4, gamma 0.9, lambda 0.65 (PQN's):
    # G_1 = 1 + 0.9*4 = 4.6
    # G_0 = 1 + 0.9*(0.35*2 + 0.65*4.6) = 1 + 0.9*(0.7 + 2.99) = 1 + 0.9*3.69 = 4.321
    out = lambda_targets(col(1, 1), bcol(F, F), bcol(F, F), col(2, 4), 0.9, 0.65)
    np.testing.assert_allclose(out, col(4.321, 4.6), rtol=1e-6)


def _random_segments(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        T, K = int(rng.integers(1, 8)), int(rng.integers(1, 6))
        rewards = rng.normal(size=(T, K)).astype(np.float32)
        terminated = rng.random((T, K)) < 0.2
        done = terminated | (rng.random((T, K)) < 0.2)
        values = (rng.normal(size=(T, K)) * 5).astype(np.float32)
        yield rewards, terminated, done, values, float(rng.choice([0.5, 0.9, 0.99]))


def test_lambda_one_is_the_n_step_returns_bit_for_bit():
    n_ends = 0
    for rewards, terminated, done, values, gamma in _random_segments(200):
        np.testing.assert_array_equal(lambda_targets(rewards, terminated, done, values, gamma, 1.0),
                                      n_step_targets(rewards, terminated, done, values, gamma))
        n_ends += int(done.sum())
    assert n_ends > 100  # episode ends (terminated and truncated) were exercised


def test_lambda_zero_is_the_one_step_targets():
    for rewards, terminated, done, values, gamma in _random_segments(200, seed=1):
        np.testing.assert_allclose(lambda_targets(rewards, terminated, done, values, gamma, 0.0),
                                   one_step_targets(rewards, terminated, values, gamma), rtol=1e-6, atol=1e-6)


def test_lambda_in_between_differs_from_both_ends():
    r, term, done, v = col(*R3), bcol(F, F, F), bcol(F, F, F), col(*V3)
    mid = lambda_targets(r, term, done, v, 0.5, 0.5)[0, 0]
    one, full = one_step_targets(r, term, v, 0.5)[0, 0], n_step_targets(r, term, done, v, 0.5)[0, 0]
    # one-step 1 + 0.5*10 = 6, n-step 4, lambda 0.5: 5.75 (test_lambda_no_episode_end)
    assert (one, full, mid) == (6.0, 4.0, 5.75)


# ------------------------------------------------------------------- losses
# q_taken = 1 everywhere, targets chosen so that the errors q - y are
#   [-0.5, 0.2, -3, 2]   (two with |e| <= 1, two with |e| > 1)
Q_TAKEN = [1.0, 1.0, 1.0, 1.0]
TARGETS = [1.5, 0.8, 4.0, -1.0]


def test_huber_loss_value_and_gradient():
    q = torch.tensor(Q_TAKEN, requires_grad=True)
    y = torch.tensor(TARGETS)
    loss = td_loss(q, y, "huber")
    # per element: 0.5*0.25 = 0.125, 0.5*0.04 = 0.02, 3 - 0.5 = 2.5, 2 - 0.5 = 1.5
    # mean = (0.125 + 0.02 + 2.5 + 1.5) / 4 = 4.145 / 4 = 1.03625
    assert loss.item() == pytest.approx(1.03625, rel=1e-6)
    loss.backward()
    # d/dq: e/4 inside the quadratic zone, sign(e)/4 outside:
    # [-0.5/4, 0.2/4, -1/4, 1/4] = [-0.125, 0.05, -0.25, 0.25]
    np.testing.assert_allclose(q.grad.numpy(), [-0.125, 0.05, -0.25, 0.25], rtol=1e-6)


def test_mse_loss_value_and_gradient():
    q = torch.tensor(Q_TAKEN, requires_grad=True)
    y = torch.tensor(TARGETS)
    loss = td_loss(q, y, "mse")
    # (0.25 + 0.04 + 9 + 4) / 4 = 13.29 / 4 = 3.3225
    assert loss.item() == pytest.approx(3.3225, rel=1e-6)
    loss.backward()
    # 2e/4 = [-0.25, 0.1, -1.5, 1.0]
    np.testing.assert_allclose(q.grad.numpy(), [-0.25, 0.1, -1.5, 1.0], rtol=1e-6)


def test_huber_equals_mse_half_inside_unit_zone():
    # All |e| <= 1: huber = 0.5 * mse. e = [0.5, -0.2] -> mse = (0.25+0.04)/2 = 0.145, huber 0.0725
    q = torch.tensor([0.5, -0.2])
    y = torch.zeros(2)
    assert td_loss(q, y, "mse").item() == pytest.approx(0.145, rel=1e-6)
    assert td_loss(q, y, "huber").item() == pytest.approx(0.0725, rel=1e-6)


def test_huber_at_boundary():
    # |e| = 1 exactly: 0.5 * 1 = 0.5 (both branches agree)
    assert td_loss(torch.tensor([1.0]), torch.tensor([0.0]), "huber").item() == pytest.approx(0.5)


def test_unknown_loss_kind_raises():
    with pytest.raises(ValueError, match="unknown loss"):
        td_loss(torch.zeros(2), torch.zeros(2), "l1")
