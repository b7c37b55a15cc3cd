"""Do two vector steppers play the same game? Fixed policies, episode returns, a two-sample test.

Used by tests/envs/test_vector.py (EnvPool against Gymnasium, small samples) and by
benchmarks/records/envpool-2026-12-01/equivalence.py (the figures in docs/envpool.md).

The policies are fixed functions of the observation batch (no learning, no randomness
unless an rng is given), so both implementations are stepped with the very same
policy; any difference in the return distributions comes from the environments:
dynamics, rewards, or the termination/auto-reset contract of the stepper.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from asyncdqn.envs.vector import VectorStepper

Policy = Callable[[np.ndarray], np.ndarray]


def lunar_lander_heuristic(s: np.ndarray) -> np.ndarray:
    """Gymnasium's `lunar_lander.heuristic` (discrete branch) for a (K, 8) batch."""
    angle_targ = np.clip(s[:, 0] * 0.5 + s[:, 2] * 1.0, -0.4, 0.4)
    hover_targ = 0.55 * np.abs(s[:, 0])
    angle_todo = (angle_targ - s[:, 4]) * 0.5 - s[:, 5] * 1.0
    hover_todo = (hover_targ - s[:, 1]) * 0.5 - s[:, 3] * 0.5
    contact = (s[:, 6] != 0) | (s[:, 7] != 0)
    angle_todo = np.where(contact, 0.0, angle_todo)
    hover_todo = np.where(contact, -s[:, 3] * 0.5, hover_todo)
    a = np.zeros(len(s), dtype=np.int64)
    a = np.where(angle_todo > 0.05, 1, a)
    a = np.where(angle_todo < -0.05, 3, a)
    a = np.where((hover_todo > np.abs(angle_todo)) & (hover_todo > 0.05), 2, a)
    return a


def cartpole_heuristic(s: np.ndarray) -> np.ndarray:
    """Push toward the side the pole leans to (angle only): episodes of ~40 steps, spread ~10."""
    return (s[:, 2] > 0).astype(np.int64)


def acrobot_heuristic(s: np.ndarray) -> np.ndarray:
    """Torque along the second joint's angular velocity (pumps energy in): ~80 steps to the line."""
    return np.where(s[:, 5] > 0, 2, 0).astype(np.int64)


def mountain_car_heuristic(s: np.ndarray) -> np.ndarray:
    """Accelerate along the velocity: reaches the flag in about 100-120 steps."""
    return np.where(s[:, 1] >= 0, 2, 0).astype(np.int64)


HEURISTICS: dict[str, Policy] = {
    "LunarLander-v3": lunar_lander_heuristic,
    "CartPole-v1": cartpole_heuristic,
    "Acrobot-v1": acrobot_heuristic,
    "MountainCar-v0": mountain_car_heuristic,
}


def episode_returns(stepper: VectorStepper, policy: Policy, episodes: int, epsilon: float = 0.0,
                    rng: np.random.Generator | None = None, max_steps: int = 10**7
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of the first `episodes` episodes completed by `stepper` under `policy`
    (epsilon-random actions from `rng` if epsilon > 0). Episodes of every env count, in the
    order they end."""
    obs = stepper.reset()
    k = stepper.num_envs
    ret = np.zeros(k)
    length = np.zeros(k, dtype=np.int64)
    returns: list[float] = []
    lengths: list[int] = []
    for _ in range(max_steps):
        a = policy(obs)
        if epsilon > 0.0:
            assert rng is not None
            explore = rng.random(k) < epsilon
            a = np.where(explore, rng.integers(0, stepper.n_actions, size=k), a)
        obs, rew, term, trunc, _ = stepper.step(a)
        ret += rew
        length += 1
        for i in np.flatnonzero(term | trunc):
            returns.append(float(ret[i]))
            lengths.append(int(length[i]))
            ret[i], length[i] = 0.0, 0
        if len(returns) >= episodes:
            return np.asarray(returns[:episodes]), np.asarray(lengths[:episodes])
    raise RuntimeError(f"only {len(returns)} of {episodes} episodes ended in {max_steps} steps")


def ks_2samp(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: (D, asymptotic two-sided p-value).

    D = sup |F_x - F_y|; p from the Kolmogorov distribution with Stephens' small-sample
    correction, Q(t) = 2 sum_{j>=1} (-1)^{j-1} exp(-2 j^2 t^2), t = D (sqrt(n) + 0.12 + 0.11 / sqrt(n)),
    n = nx ny / (nx + ny).
    """
    x, y = np.sort(np.asarray(x, dtype=float)), np.sort(np.asarray(y, dtype=float))
    grid = np.concatenate([x, y])
    d = float(np.max(np.abs(np.searchsorted(x, grid, side="right") / len(x)
                            - np.searchsorted(y, grid, side="right") / len(y))))
    n = len(x) * len(y) / (len(x) + len(y))
    t = d * (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n))
    if t < 1e-3:
        return d, 1.0
    p = 2.0 * sum((-1) ** (j - 1) * math.exp(-2.0 * j * j * t * t) for j in range(1, 101))
    return d, min(1.0, max(0.0, p))


def welch_z(x: np.ndarray, y: np.ndarray) -> float:
    """Difference of means in standard errors (Welch): |z| > 3 is a clear difference."""
    se = math.sqrt(np.var(x, ddof=1) / len(x) + np.var(y, ddof=1) / len(y))
    diff = float(np.mean(x) - np.mean(y))
    return diff / se if se > 0 else (0.0 if diff == 0 else math.inf)
