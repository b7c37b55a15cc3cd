"""Evaluation: N episodes on freshly seeded environments, greedy or with a small epsilon
(--eval-epsilon: Atari's usual 0.05 keeps an agent from stalling a game forever).

`evaluate` plays the episodes; everything that evaluates a policy (the trainer's
evaluator process, `Policy.evaluate`, `asyncdqn evaluate`, the solve benchmark) plays
them here. Time bounds make it end whatever the policy does: an episode still running
after `episode_seconds`, or the whole evaluation at `deadline`, stops it, and the
result says so (`complete` false, the finished episodes only).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from asyncdqn.envs import env_seeds, make_env

QFunction = Callable[[np.ndarray], np.ndarray]  # (B, *obs_shape) -> (B, n_actions), numpy in and out

EVAL_STREAM = 1_000_000  # seed streams >= this are evaluation seeds, disjoint from workers'
# A user's evaluation of a trained run (`asyncdqn evaluate`, Policy.evaluate): episodes and their seed.
DEFAULT_EPISODES = 100
DEFAULT_SEED = 12345


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
    # False: a time bound cut the evaluation short; `returns` holds only the episodes that
    # finished (none: mean and std are NaN), out of `requested`, and `cut` says why.
    complete: bool = True
    requested: int | None = None  # episodes asked for (None: as many as played)
    cut: str | None = None

    @property
    def input_blind(self) -> bool:
        return self.q_range == 0.0

    @property
    def episodes(self) -> int:
        return len(self.returns)

    def to_dict(self) -> dict[str, object]:
        def num(x: float) -> float | None:  # JSON has no NaN
            return x if math.isfinite(x) else None

        played = bool(self.returns)
        d: dict[str, object] = {
            "mean": num(self.mean), "std": num(self.std), "episodes": self.episodes,
            "min": min(self.returns) if played else None, "max": max(self.returns) if played else None,
            "mean_length": float(np.mean(self.lengths)) if played else None, "q_range": num(self.q_range),
            "returns": list(self.returns), "complete": self.complete}
        if not self.complete:
            d.update(requested=self.requested, cut=self.cut)
        return d


def summary(d: dict[str, Any]) -> str:
    """'mean ± std over N episodes' of an `EvalResult.to_dict()`, saying so when a time bound cut it short."""
    played = d["episodes"]
    text = f"{d['mean']:.1f} ± {d['std']:.1f} over {played} episodes" if played else "no episode finished"
    if not d.get("complete", True):
        text += f" (cut short: {played} of {d.get('requested')} episodes finished; {d.get('cut')})"
    return text


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
    episode_seconds: float | None = None,
    deadline: float | None = None,
    epsilon: float = 0.0,
) -> EvalResult:
    """Play `episodes` episodes, each env reset with its own fresh seed.

    Up to `parallel_envs` episodes run side by side so that actions are chosen
    with one batched forward. Deterministic for (seed, round_index). `tick`, if
    given, is called once per batched step (the trainer keeps its weight average
    current while an evaluation runs). `env_kwargs` go to gym.make; the environments carry
    no learning-only wrapper, so returns are raw scores of whole games (no reward clipping,
    no life-loss ends). With `epsilon` > 0 each action is uniformly random with that probability,
    drawn from a generator seeded by (seed, round_index) too.

    Bounds: an episode still running after `episode_seconds` of wall time (a policy that
    never ends one), or reaching `deadline` (a `time.monotonic()` value), stops the whole
    evaluation; the result is then marked incomplete and holds the finished episodes only.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    seeds = env_seeds(seed, EVAL_STREAM + round_index, episodes)
    rng = np.random.default_rng([seed, EVAL_STREAM + round_index]) if epsilon > 0.0 else None
    envs = [make_env(env_id, max_episode_steps, env_kwargs=env_kwargs) for _ in range(min(parallel_envs, episodes))]
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    q_lo = q_hi = None  # per action, over every observation
    finished = np.zeros(episodes, dtype=bool)
    cut: str | None = None
    try:
        space = envs[0].observation_space
        dtype = np.uint8 if space.dtype == np.uint8 else np.float32  # images stay uint8
        obs = np.zeros((len(envs), *space.shape), dtype=dtype)  # type: ignore[misc]
        episode_of = np.full(len(envs), -1)
        started = np.zeros(len(envs))  # monotonic time each env's current episode began
        next_ep = 0
        for i, env in enumerate(envs):
            obs[i] = env.reset(seed=seeds[next_ep])[0]
            episode_of[i] = next_ep
            started[i] = time.monotonic()
            next_ep += 1
        while (active := np.flatnonzero(episode_of >= 0)).size:
            if tick is not None:
                tick()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                cut = "time bound of the evaluation reached"
                break
            if episode_seconds is not None and now - started[active].min() > episode_seconds:
                cut = f"an episode ran longer than {episode_seconds:g} s"
                break
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
                    finished[ep] = True
                    if next_ep < episodes:
                        obs[i] = envs[i].reset(seed=seeds[next_ep])[0]
                        episode_of[i] = next_ep
                        started[i] = time.monotonic()
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
    if cut is None:
        return EvalResult(float(returns.mean()), float(returns.std()), tuple(returns.tolist()),
                          tuple(int(x) for x in lengths), q_range)
    done = returns[finished]
    mean, std = (float(done.mean()), float(done.std())) if done.size else (math.nan, math.nan)
    return EvalResult(mean, std, tuple(done.tolist()), tuple(int(x) for x in lengths[finished]), q_range,
                      complete=False, requested=episodes, cut=cut)
