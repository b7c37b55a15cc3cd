"""Replay buffer for vanilla DQN: a numpy ring of one-step transitions from K envs.

Storage is time-major, one column per environment: slot `i` holds the transition
every one of the K environments made at the same vector step, so an environment's
consecutive transitions are consecutive slots (modulo the ring). That makes n-step
windows a plain gather: the window of (slot i, env k) is slots i, i+1, ..., i+n-1
of column k.

A start slot is *valid* only if all n slots of its window have been written and
none has been overwritten since, i.e. its age (slots since the oldest stored
slot) is at most `size - n`. The newest n-1 slots are therefore not sampled until
more data arrives, even if an episode ended inside them (a small, deliberate
simplification: no partial windows at the head).

n-step returns are computed by `algo.targets.n_step_targets` on the gathered
(n, B) window: they stop at the first episode end in the window, bootstrap
(1 - terminated) * V(final observation) there (zero on termination, the final
state's value on truncation) and V(s_{i+n}) otherwise. No math is duplicated here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asyncdqn.algo.targets import n_step_targets


@dataclass(frozen=True)
class ReplayBatch:
    """B sampled windows. Per-step arrays are (n, B): row j is step i+j of the window."""

    obs: np.ndarray  # (B, obs_dim) s_i
    actions: np.ndarray  # (B,) a_i
    rewards: np.ndarray  # (n, B)
    terminated: np.ndarray  # (n, B)
    done: np.ndarray  # (n, B) terminated or truncated
    next_obs: np.ndarray  # (n, B, obs_dim): the true next state of each step (final obs at an episode end)
    slots: np.ndarray  # (B,) start slot of each window
    envs: np.ndarray  # (B,) environment column of each window

    @property
    def n_step(self) -> int:
        return int(self.rewards.shape[0])

    def bootstrap_index(self) -> np.ndarray:
        """(B,) row of each window whose next state the return bootstraps from: its first
        episode end, else the last row. Only V(next_obs) at these rows affects the
        window's n-step return, so a learner may evaluate just those B states."""
        ended = self.done.any(axis=0)
        return np.where(ended, self.done.argmax(axis=0), self.n_step - 1)


class ReplayBuffer:
    """Fixed-capacity ring of transitions from `n_envs` environments stepped together.

    `capacity` counts transitions; it is rounded down to a multiple of `n_envs`
    (at least one slot per window is needed: capacity // n_envs >= n_step).
    """

    def __init__(self, capacity: int, n_envs: int, obs_dim: int | tuple[int, ...], n_step: int = 1,
                 dtype: type = np.float32) -> None:
        """`obs_dim`: the observation size, or its shape (images: (C, H, W), stored as `dtype`, e.g. uint8)."""
        shape = (obs_dim,) if isinstance(obs_dim, int) else tuple(obs_dim)
        if n_envs < 1 or n_step < 1 or min(shape, default=0) < 1:
            raise ValueError(f"n_envs, obs_dim and n_step must be >= 1, got {n_envs}, {obs_dim}, {n_step}")
        slots = capacity // n_envs
        if slots < n_step:
            raise ValueError(f"capacity {capacity} holds {slots} steps of {n_envs} envs; need >= n_step={n_step}")
        self.slots, self.n_envs, self.n_step = slots, n_envs, n_step
        self.obs: np.ndarray = np.zeros((slots, n_envs, *shape), dtype=dtype)
        self.next_obs: np.ndarray = np.zeros((slots, n_envs, *shape), dtype=dtype)
        self.actions = np.zeros((slots, n_envs), dtype=np.int64)
        self.rewards = np.zeros((slots, n_envs), dtype=np.float32)
        self.terminated = np.zeros((slots, n_envs), dtype=bool)
        self.done = np.zeros((slots, n_envs), dtype=bool)
        self.pos = 0  # next slot to write
        self.size = 0  # slots holding data (<= self.slots)

    @property
    def capacity(self) -> int:
        return self.slots * self.n_envs

    def __len__(self) -> int:
        """Transitions stored."""
        return self.size * self.n_envs

    @property
    def oldest(self) -> int:
        """Slot of the oldest stored step."""
        return self.pos if self.size == self.slots else 0

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, done: np.ndarray) -> None:
        """Store one vector step: every argument has the K environments on axis 0.

        `next_obs` must be the true next state (the final observation for an ended
        episode, not the auto-reset's first observation)."""
        i = self.pos
        self.obs[i] = obs
        self.actions[i] = actions
        self.rewards[i] = rewards
        self.next_obs[i] = next_obs
        self.terminated[i] = terminated
        self.done[i] = done
        self.pos = (i + 1) % self.slots
        self.size = min(self.size + 1, self.slots)

    def valid_starts(self) -> int:
        """Number of start slots whose whole n-step window is stored (per environment)."""
        return max(self.size - self.n_step + 1, 0)

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplayBatch:
        """B windows drawn uniformly (with replacement) over valid (slot, env) pairs."""
        n_valid = self.valid_starts()
        if n_valid == 0:
            raise ValueError("replay buffer holds no complete n-step window yet")
        age = rng.integers(0, n_valid, size=batch_size)
        envs = rng.integers(0, self.n_envs, size=batch_size)
        slots = (self.oldest + age) % self.slots
        win = (slots[None, :] + np.arange(self.n_step)[:, None]) % self.slots  # (n, B)
        cols = np.broadcast_to(envs, win.shape)
        return ReplayBatch(
            obs=self.obs[slots, envs],
            actions=self.actions[slots, envs],
            rewards=self.rewards[win, cols],
            terminated=self.terminated[win, cols],
            done=self.done[win, cols],
            next_obs=self.next_obs[win, cols],
            slots=slots,
            envs=envs,
        )


def n_step_returns(batch: ReplayBatch, next_values: np.ndarray, gamma: float) -> np.ndarray:
    """(B,) n-step TD targets of the windows' first steps, given next_values (n, B) = V(next_obs).

    Delegates to `n_step_targets` (a window is an n-step segment; its first row
    is the n-step return), so replay DQN and n-step-q share one definition.
    """
    returns = n_step_targets(batch.rewards, batch.terminated, batch.done,
                             next_values.astype(batch.rewards.dtype, copy=False), gamma)
    return np.asarray(returns[0])
