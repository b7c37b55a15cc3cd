"""Exploration schedules (epsilon-greedy), driven by environment steps or episodes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def linear_epsilon(step: int, start: float, end: float | np.ndarray, anneal_steps: int) -> float | np.ndarray:
    """Epsilon annealed linearly from `start` at step 0 to `end` at `anneal_steps`, constant after.

    `end` may be an array (one final epsilon per environment)."""
    frac = min(max(step, 0) / anneal_steps, 1.0)
    return start + frac * (end - start)


def sample_final_epsilons(
    rng: np.random.Generator, n: int, values: Sequence[float], probs: Sequence[float]
) -> np.ndarray:
    """Draw n final epsilons (paper: {0.1, 0.01, 0.5} with probabilities {0.4, 0.3, 0.3})."""
    return rng.choice(np.asarray(values, dtype=np.float64), size=n, p=np.asarray(probs, dtype=np.float64))


def decay_per_episode(eps: float, decay: float, eps_min: float) -> float:
    """The seed notebook's schedule: eps <- max(eps_min, decay * eps) after each episode."""
    return max(eps_min, decay * eps)


def epsilon_greedy(
    q_values: np.ndarray, eps: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Per-row epsilon-greedy actions for a (K, A) batch of Q-values and (K,) epsilons."""
    k, n_actions = q_values.shape
    actions = q_values.argmax(axis=1)
    explore = rng.random(k) < eps
    if explore.any():
        actions = np.where(explore, rng.integers(0, n_actions, size=k), actions)
    return np.asarray(actions)


def epsilon_greedy_drawn(
    q_values: np.ndarray, eps: np.ndarray, uniforms: np.ndarray, random_actions: np.ndarray
) -> np.ndarray:
    """`epsilon_greedy` with its randomness drawn beforehand (a worker draws a whole segment's
    at once): row k explores, taking random_actions[k], iff uniforms[k] < eps[k]; else argmax."""
    return np.asarray(np.where(uniforms < eps, random_actions, q_values.argmax(axis=1)))
