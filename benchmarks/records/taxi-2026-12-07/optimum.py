"""The best any policy can do on Taxi-v4: value iteration on the environment's own transition table
(env.unwrapped.P, deterministic, undiscounted episodic return), averaged over its initial-state
distribution, and how often that optimal policy's 100-episode mean reaches a score.

    python benchmarks/records/taxi-2026-12-07/optimum.py [SCORE ...]"""

from __future__ import annotations

import math
import sys

import gymnasium as gym
import numpy as np


def optimal_values(env_id: str = "Taxi-v4") -> tuple[np.ndarray, np.ndarray]:
    env = gym.make(env_id).unwrapped
    n_s, n_a = env.observation_space.n, env.action_space.n
    v = np.zeros(n_s)
    while True:
        q = np.array([[sum(p * (r + (0.0 if done else v[s2])) for p, s2, r, done in env.P[s][a])
                       for a in range(n_a)] for s in range(n_s)])
        new = q.max(axis=1)
        if np.abs(new - v).max() < 1e-9:
            return new, np.asarray(env.initial_state_distrib)
        v = new


def main(scores: list[float]) -> None:
    v, start = optimal_values()
    mean = float(start @ v)
    std = float(math.sqrt(start @ (v - mean) ** 2))
    print(f"optimal policy: expected return {mean:.3f}, std over starts {std:.3f}")
    for score in scores:
        z = (score - mean) / (std / 10)  # 100 episodes; returns are integers, so >= score
        p = 0.5 * math.erfc(z / math.sqrt(2))
        print(f"P(100-episode mean >= {score}) for the optimal policy: {p:.2f} (normal approximation)")


if __name__ == "__main__":
    main([float(s) for s in sys.argv[1:]] or [8.0, 7.5])
