"""Exploration schedules (asyncdqn.algo.exploration) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from asyncdqn.algo.exploration import (
    decay_per_episode,
    epsilon_greedy,
    linear_epsilon,
    sample_final_epsilons,
)

# chi-square critical value, 3 degrees of freedom, p = 0.001
CHI2_3DOF_999 = 16.266


# ------------------------------------------------------------ linear_epsilon
@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 1.0),      # start
        (25, 0.775),   # 1 + 0.25 * (0.1 - 1) = 1 - 0.225
        (50, 0.55),    # 1 + 0.5 * (0.1 - 1) = 1 - 0.45
        (100, 0.1),    # end
        (250, 0.1),    # beyond the end: constant
        (-5, 1.0),     # before the start: clamped
    ],
)
def test_linear_epsilon_scalar(step, expected):
    assert linear_epsilon(step, 1.0, 0.1, 100) == pytest.approx(expected, abs=1e-12)


def test_linear_epsilon_array_end():
    end = np.array([0.1, 0.01, 0.5])
    # midway (step 50 of 100): 1 + 0.5*(end - 1) = [0.55, 0.505, 0.75]
    np.testing.assert_allclose(linear_epsilon(50, 1.0, end, 100), [0.55, 0.505, 0.75], atol=1e-12)
    np.testing.assert_allclose(linear_epsilon(0, 1.0, end, 100), [1.0, 1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(linear_epsilon(100, 1.0, end, 100), [0.1, 0.01, 0.5], atol=1e-12)
    np.testing.assert_allclose(linear_epsilon(10_000, 1.0, end, 100), [0.1, 0.01, 0.5], atol=1e-12)


def test_linear_epsilon_nonunit_start():
    # start 0.5 -> end 0.0 over 4 steps: step 1 -> 0.375, step 3 -> 0.125
    assert linear_epsilon(1, 0.5, 0.0, 4) == pytest.approx(0.375)
    assert linear_epsilon(3, 0.5, 0.0, 4) == pytest.approx(0.125)


# ------------------------------------------------------ sample_final_epsilons
def test_sample_final_epsilons_frequencies():
    rng = np.random.default_rng(12345)
    draws = sample_final_epsilons(rng, 20_000, (0.1, 0.01, 0.5), (0.4, 0.3, 0.3))
    assert draws.shape == (20_000,)
    assert set(np.unique(draws).tolist()) == {0.1, 0.01, 0.5}
    for value, p in ((0.1, 0.4), (0.01, 0.3), (0.5, 0.3)):
        assert abs(np.mean(draws == value) - p) < 0.02, (value, np.mean(draws == value))


def test_sample_final_epsilons_zero_probability_never_drawn():
    rng = np.random.default_rng(0)
    draws = sample_final_epsilons(rng, 1000, (0.1, 0.01, 0.5), (1.0, 0.0, 0.0))
    assert np.all(draws == 0.1)


def test_sample_final_epsilons_seeded_is_reproducible():
    a = sample_final_epsilons(np.random.default_rng(7), 50, (0.1, 0.01, 0.5), (0.4, 0.3, 0.3))
    b = sample_final_epsilons(np.random.default_rng(7), 50, (0.1, 0.01, 0.5), (0.4, 0.3, 0.3))
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------- decay_per_episode
def test_decay_per_episode_hits_floor():
    # 1.0 -> 0.5 -> 0.25 -> 0.2 (floor; 0.125 < 0.2) -> 0.2
    eps, seen = 1.0, []
    for _ in range(4):
        eps = decay_per_episode(eps, 0.5, 0.2)
        seen.append(eps)
    assert seen == pytest.approx([0.5, 0.25, 0.2, 0.2])


def test_decay_per_episode_notebook_numbers():
    # 0.999 per episode from 1.0: after one episode 0.999; from 0.0100 -> floor 0.01
    assert decay_per_episode(1.0, 0.999, 0.01) == pytest.approx(0.999)
    assert decay_per_episode(0.01, 0.999, 0.01) == pytest.approx(0.01)


# ------------------------------------------------------------ epsilon_greedy
Q4 = np.array([0.1, 0.7, 0.3, -1.0])  # greedy action: 1


def test_epsilon_greedy_eps0_is_argmax():
    rng = np.random.default_rng(0)
    q = np.array([[0.1, 0.7, 0.3], [5.0, -1.0, 4.0], [0.0, 0.0, 2.0]])
    for _ in range(50):
        np.testing.assert_array_equal(epsilon_greedy(q, np.zeros(3), rng), [1, 0, 2])


def test_epsilon_greedy_eps1_is_uniform():
    rng = np.random.default_rng(1)
    n = 40_000
    q = np.tile(Q4, (n, 1))
    actions = epsilon_greedy(q, np.ones(n), rng)
    counts = np.bincount(actions, minlength=4)
    assert counts.shape == (4,) and np.all(counts > 0)
    expected = n / 4
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < CHI2_3DOF_999, counts


def test_epsilon_greedy_half_eps_greedy_frequency():
    # eps 0.5, 4 actions: P(greedy) = 0.5 + 0.5/4 = 0.625, each other action 0.125
    rng = np.random.default_rng(2)
    n = 40_000
    actions = epsilon_greedy(np.tile(Q4, (n, 1)), np.full(n, 0.5), rng)
    freq = np.bincount(actions, minlength=4) / n
    np.testing.assert_allclose(freq, [0.125, 0.625, 0.125, 0.125], atol=0.01)


def test_epsilon_greedy_per_row_eps():
    # Even rows eps 0 (always greedy), odd rows eps 1 (uniform).
    rng = np.random.default_rng(3)
    n = 20_000
    eps = np.tile([0.0, 1.0], n // 2)
    actions = epsilon_greedy(np.tile(Q4, (n, 1)), eps, rng)
    assert np.all(actions[0::2] == 1)
    odd = np.bincount(actions[1::2], minlength=4)
    assert np.all(odd > 0)
    expected = (n // 2) / 4
    chi2 = float(((odd - expected) ** 2 / expected).sum())
    assert chi2 < CHI2_3DOF_999, odd


def test_epsilon_greedy_shape_and_range():
    rng = np.random.default_rng(4)
    q = rng.normal(size=(7, 3))
    a = epsilon_greedy(q, np.full(7, 0.3), rng)
    assert a.shape == (7,)
    assert np.all((a >= 0) & (a < 3))


def test_epsilon_greedy_drawn_explores_exactly_where_uniform_below_epsilon():
    from asyncdqn.algo.exploration import epsilon_greedy_drawn

    q = np.array([[0.0, 1.0, 0.5], [2.0, 0.0, 0.0], [0.0, 0.0, 3.0], [1.0, 0.0, 0.0]])
    eps = np.array([0.5, 0.5, 0.0, 1.0])
    u = np.array([0.4, 0.6, 0.0, 0.999])
    rand = np.array([2, 1, 0, 1])
    # row 0 explores (0.4 < 0.5), row 1 is greedy, row 2 never explores (eps 0), row 3 always does
    np.testing.assert_array_equal(epsilon_greedy_drawn(q, eps, u, rand), [2, 0, 2, 1])
