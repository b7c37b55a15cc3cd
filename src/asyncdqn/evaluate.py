"""Evaluation: N episodes on freshly seeded environments, greedy or with a small epsilon
(--eval-epsilon: Atari's usual 0.05 keeps an agent from stalling a game forever)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from asyncdqn.envs import env_seeds, make_env

QFunction = Callable[[np.ndarray], np.ndarray]  # (B, *obs_shape) -> (B, n_actions), numpy in and out

EVAL_STREAM = 1_000_000  # seed streams >= this are evaluation seeds, disjoint from workers'


@dataclass(frozen=True)
class EvalResult:
    mean: float
    std: float
    returns: tuple[float, ...]
    lengths: tuple[int, ...]
    # The largest spread (max - min) of any action's Q-value over every observation played. Exactly
    # 0: the network answers the same whatever it sees (its features died: ReLU units that never
    # activate), and it cannot learn any more.
    q_range: float = float("nan")

    @property
    def input_blind(self) -> bool:
        return self.q_range == 0.0

    @property
    def episodes(self) -> int:
        return len(self.returns)

    def to_dict(self) -> dict[str, object]:
        return {"mean": self.mean, "std": self.std, "episodes": self.episodes,
                "min": min(self.returns), "max": max(self.returns),
                "mean_length": float(np.mean(self.lengths)), "q_range": self.q_range, "returns": list(self.returns)}


def evaluate(
    q: QFunction,
    env_id: str,
    episodes: int,
    seed: int,
    round_index: int = 0,
    max_episode_steps: int | None = None,
    parallel_envs: int = 16,
    tick: Callable[[], None] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    epsilon: float = 0.0,
) -> EvalResult:
    """Play `episodes` greedy episodes, each env reset with its own fresh seed.

    Up to `parallel_envs` episodes run side by side so that actions are chosen
    with one batched forward. Deterministic for (seed, round_index). `tick`, if
    given, is called once per batched step (the trainer keeps its weight average
    current while an evaluation runs). `env_kwargs` go to gym.make; the environments carry
    no learning-only wrapper, so returns are raw scores of whole games (no reward clipping,
    no life-loss ends). With `epsilon` > 0 each action is uniformly random with that probability,
    drawn from a generator seeded by (seed, round_index) too.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    seeds = env_seeds(seed, EVAL_STREAM + round_index, episodes)
    rng = np.random.default_rng([seed, EVAL_STREAM + round_index]) if epsilon > 0.0 else None
    envs = [make_env(env_id, max_episode_steps, env_kwargs=env_kwargs) for _ in range(min(parallel_envs, episodes))]
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    q_lo = q_hi = None  # per action, over every observation
    try:
        space = envs[0].observation_space
        dtype = np.uint8 if space.dtype == np.uint8 else np.float32  # images stay uint8
        obs = np.zeros((len(envs), *space.shape), dtype=dtype)  # type: ignore[misc]
        episode_of = np.full(len(envs), -1)
        next_ep = 0
        for i, env in enumerate(envs):
            obs[i] = env.reset(seed=seeds[next_ep])[0]
            episode_of[i] = next_ep
            next_ep += 1
        while (active := np.flatnonzero(episode_of >= 0)).size:
            if tick is not None:
                tick()
            values = q(obs[active])
            actions = values.argmax(axis=1)
            if rng is not None:
                explore = rng.random(len(actions)) < epsilon
                actions = np.where(explore, rng.integers(0, values.shape[1], len(actions)), actions)
            lo, hi = values.min(axis=0), values.max(axis=0)
            q_lo = lo if q_lo is None else np.minimum(q_lo, lo)
            q_hi = hi if q_hi is None else np.maximum(q_hi, hi)
            for i, a in zip(active.tolist(), actions.tolist(), strict=True):
                o, r, term, trunc, _ = envs[i].step(int(a))
                ep = int(episode_of[i])
                returns[ep] += float(r)
                lengths[ep] += 1
                if term or trunc:
                    if next_ep < episodes:
                        obs[i] = envs[i].reset(seed=seeds[next_ep])[0]
                        episode_of[i] = next_ep
                        next_ep += 1
                    else:
                        episode_of[i] = -1
                else:
                    obs[i] = o
    finally:
        for env in envs:
            env.close()
    q_range = float("nan")  # one observation in all has no spread to judge
    if q_lo is not None and q_hi is not None and lengths.sum() > 1:
        q_range = float(np.max(q_hi - q_lo))
    return EvalResult(float(returns.mean()), float(returns.std()), tuple(returns.tolist()),
                      tuple(int(x) for x in lengths), q_range)
