"""Replay buffer: capacity and overwrite order, valid sampling, n-step returns by hand."""

from __future__ import annotations

import numpy as np
import pytest

from asyncdqn.algo.replay import ReplayBuffer, n_step_returns


def add_step(buf: ReplayBuffer, t: int, *, done=None, term=None) -> None:
    """Store vector step t: obs = t (+100 per env), action = t % 2, reward = t + 1."""
    K = buf.n_envs
    obs = np.array([[t + 100 * k] for k in range(K)], dtype=np.float32)
    done = np.zeros(K, bool) if done is None else np.asarray(done)
    term = np.zeros(K, bool) if term is None else np.asarray(term)
    buf.add(obs, np.full(K, t % 2), np.full(K, t + 1.0, np.float32), obs + 0.5, term, done)


def test_capacity_rounds_to_envs_and_overwrites_oldest_first():
    buf = ReplayBuffer(capacity=7, n_envs=2, obs_dim=1)  # 3 slots of 2 envs
    assert buf.capacity == 6 and buf.slots == 3
    for t in range(3):
        add_step(buf, t)
    assert len(buf) == 6 and buf.oldest == 0
    add_step(buf, 3)  # overwrites slot 0 (step 0), the oldest
    add_step(buf, 4)  # overwrites slot 1 (step 1)
    assert len(buf) == 6
    assert buf.pos == 2 and buf.oldest == 2
    np.testing.assert_array_equal(buf.obs[:, 0, 0], [3, 4, 2])
    np.testing.assert_array_equal(buf.obs[:, 1, 0], [103, 104, 102])
    # chronological order from the oldest slot: steps 2, 3, 4
    order = [(buf.oldest + a) % buf.slots for a in range(buf.slots)]
    np.testing.assert_array_equal(buf.rewards[order, 0], [3.0, 4.0, 5.0])


def test_rejects_buffer_smaller_than_a_window():
    with pytest.raises(ValueError):
        ReplayBuffer(capacity=4, n_envs=2, obs_dim=1, n_step=3)


def test_sampling_only_returns_complete_windows():
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(capacity=10, n_envs=2, obs_dim=1, n_step=3)  # 5 slots
    with pytest.raises(ValueError):
        buf.sample(4, rng)
    add_step(buf, 0)
    add_step(buf, 1)
    assert buf.valid_starts() == 0
    add_step(buf, 2)
    assert buf.valid_starts() == 1
    b = buf.sample(64, rng)
    np.testing.assert_array_equal(b.slots, 0)  # only step 0 has its 3-step window
    assert set(b.envs.tolist()) == {0, 1}
    for t in range(3, 12):  # wrap the ring twice; newest stored step is 11, oldest 7
        add_step(buf, t)
    b = buf.sample(2000, rng)
    steps = b.obs[:, 0] - 100 * b.envs
    assert set(steps.tolist()) == {7.0, 8.0, 9.0}  # 10 and 11 lack two following steps
    # each window is the env's consecutive steps
    np.testing.assert_array_equal(b.rewards, (steps[None, :] + 1 + np.arange(3)[:, None]))
    np.testing.assert_array_equal(b.next_obs[0, :, 0], b.obs[:, 0] + 0.5)
    assert b.n_step == 3


def test_sampling_is_uniform_over_valid_pairs():
    rng = np.random.default_rng(1)
    buf = ReplayBuffer(capacity=8, n_envs=2, obs_dim=1, n_step=1)
    for t in range(4):
        add_step(buf, t)
    b = buf.sample(40_000, rng)
    counts = np.bincount((b.slots * 2 + b.envs).astype(int), minlength=8)
    assert counts.min() > 4_000 and counts.max() < 6_000  # 8 pairs, 5000 expected each


def _window_buffer(n_step: int) -> ReplayBuffer:
    """One env, 4 slots; steps 0..5 so the ring wraps: stored steps 2, 3, 4, 5 in slots 2, 3, 0, 1.
    Step 3 ends an episode (terminated, or truncated), so it sits across the ring boundary."""
    return ReplayBuffer(capacity=4, n_envs=1, obs_dim=1, n_step=n_step)


@pytest.mark.parametrize("truncated", [False, True])
def test_n_step_returns_by_hand_across_the_ring_boundary(truncated):
    gamma = 0.5
    buf = _window_buffer(3)
    for t in range(6):
        ended = t == 3
        add_step(buf, t, done=[ended], term=[ended and not truncated])
    assert buf.oldest == 2
    rng = np.random.default_rng(0)
    b = buf.sample(200, rng)
    steps = b.obs[:, 0].astype(int)
    assert set(steps.tolist()) == {2, 3}  # windows (2,3,4) and (3,4,5): the latter wraps to slots 3, 0, 1
    # V(next_obs) = 10 * next_obs, where next_obs of step t is t + 0.5
    v = 10.0 * b.next_obs[..., 0]
    y = n_step_returns(b, v, gamma)
    # rewards: step t gives t + 1. Step 3 ends the episode:
    #   start 2: r2 + g r3 + g^2 * (1 - term) * V(s after 3) = 3 + 0.5*4 + 0.25*(35 if truncated else 0)
    #   start 3: r3 + g (1 - term) V(final obs of 3)          = 4 + 0.5*(35 if truncated else 0)
    boot = 35.0 if truncated else 0.0
    expect = {2: 3 + 0.5 * 4 + 0.25 * boot, 3: 4 + 0.5 * boot}
    for s, yi in zip(steps, y, strict=True):
        assert yi == pytest.approx(expect[int(s)])


def test_n_step_returns_without_episode_end_bootstrap_at_n():
    gamma = 0.9
    buf = ReplayBuffer(capacity=10, n_envs=1, obs_dim=1, n_step=3)
    for t in range(4):
        add_step(buf, t)
    b = buf.sample(50, np.random.default_rng(0))
    y = n_step_returns(b, 10.0 * b.next_obs[..., 0], gamma)
    for s, yi in zip(b.obs[:, 0].astype(int), y, strict=True):
        # r_s + g r_{s+1} + g^2 r_{s+2} + g^3 V(s+3), V(x) = 10 * (s + 2.5)
        want = (s + 1) + gamma * (s + 2) + gamma**2 * (s + 3) + gamma**3 * 10 * (s + 2.5)
        assert yi == pytest.approx(want, rel=1e-6)


def test_one_step_returns_match_the_classic_dqn_target():
    buf = ReplayBuffer(capacity=6, n_envs=2, obs_dim=1, n_step=1)
    add_step(buf, 0, done=[True, False], term=[True, False])
    add_step(buf, 1)
    b = buf.sample(100, np.random.default_rng(2))
    v = np.full((1, 100), 7.0, np.float32)
    y = n_step_returns(b, v, 0.99)
    want = b.rewards[0] + 0.99 * (1.0 - b.terminated[0]) * 7.0
    np.testing.assert_allclose(y, want, rtol=1e-6)
    assert (b.terminated[0] == ((b.slots == 0) & (b.envs == 0))).all()


def test_bootstrap_index_values_alone_give_the_same_returns():
    # Only V at each window's bootstrap row matters: zeroing every other row changes nothing.
    rng = np.random.default_rng(3)
    buf = ReplayBuffer(capacity=40, n_envs=2, obs_dim=1, n_step=4)
    for t in range(30):
        ended = rng.random(2) < 0.3
        add_step(buf, t, done=ended, term=ended & (rng.random(2) < 0.5))
    b = buf.sample(500, rng)
    full = rng.normal(size=(4, 500)).astype(np.float32)
    rows = b.bootstrap_index()
    assert b.done.any() and (rows < 3).any() and (rows == 3).any()
    sparse = np.zeros_like(full)
    sparse[rows, np.arange(500)] = full[rows, np.arange(500)]
    np.testing.assert_allclose(n_step_returns(b, sparse, 0.9), n_step_returns(b, full, 0.9), rtol=1e-6)
