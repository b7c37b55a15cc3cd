"""--normalize-obs: what a learner and a greedy policy see instead of raw observations.

The statistics (count, mean, var; the math is algo/normalize.py) live in one shared object
per run (`ObsStats`, backends/base.py's SharedObsStats):

- bounds: (mean, var) from the observation space's finite bounds, fixed;
- running: every learner's `ObsNormalizer` buffers the raw observations its envs return
  and every `sync_every` steps merges them into the shared statistics (one lock per merge)
  and reads the merged ones back; it normalizes with the statistics of its last read.
  Segments (and the replay buffer of --algo dqn) keep observations normalized as they
  were when seen, as Stable-Baselines3's VecNormalize does.

The trainer saves the statistics in every checkpoint (`obs_norm.*` tensors); evaluation,
`load_policy` and render apply the saved (count, mean, var) through `NormalizedQ`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from asyncdqn.algo.normalize import batch_moments, bounds_moments, normalize, scale_of
from asyncdqn.envs.vector import StepResult, VectorStepper

PREFIX = "obs_norm."  # checkpoint tensors: obs_norm.count (1,), obs_norm.mean (D,), obs_norm.var (D,)

Moments = tuple[float, np.ndarray, np.ndarray]  # (count, mean, var) of the statistics at one moment


class ObsStats(Protocol):
    frozen: bool
    dim: int

    def read(self) -> Moments: ...
    def add(self, count: float, mean: np.ndarray, var: np.ndarray) -> None: ...


def space_bounds_moments(space: gym.Space[Any], env_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean, var) of --normalize-obs bounds for a (flat) Box space; ValueError with the reason if it has none."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"{env_id}: --normalize-obs applies to vector observations; {space} is not one "
                         "(images are scaled by the network)")
    try:
        return bounds_moments(space.low, space.high)
    except ValueError as exc:
        raise ValueError(f"{env_id}: --normalize-obs bounds needs finite bounds, but {exc}; "
                         "use --normalize-obs running") from None


class ObsNormalizer:
    """A learner's view of the shared statistics: observe raw batches, normalize any batch."""

    def __init__(self, stats: ObsStats, sync_every: int = 8) -> None:
        self.stats = stats
        self.sync_every = sync_every
        self._rows: list[np.ndarray] = []  # raw batches since the last merge
        self._pull()

    def _pull(self) -> None:
        _, self.mean, var = self.stats.read()
        self.scale = scale_of(var)
        self._mean32, self._scale32 = self.mean.astype(np.float32), self.scale.astype(np.float32)

    def observe(self, obs: np.ndarray) -> None:
        """Count the raw batch `obs` (K, D) in (running); merged every `sync_every` calls."""
        if self.stats.frozen:
            return
        self._rows.append(np.array(obs, dtype=np.float64).reshape(len(obs), -1))
        if len(self._rows) >= self.sync_every:
            self.flush()

    def flush(self) -> None:
        """Merge the buffered observations into the shared statistics and read those back."""
        if self._rows:
            self.stats.add(*batch_moments(np.concatenate(self._rows)))
            self._rows = []
        self._pull()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return normalize(x, self._mean32, self._scale32)


class NormalizingStepper:
    """A VectorStepper whose observations (and final observations) come out normalized; the raw
    observations it returns are what the running statistics count (final ones are not: the
    next episode's first observation stands in their row, as in VecNormalize)."""

    def __init__(self, inner: VectorStepper, norm: ObsNormalizer) -> None:
        self.inner, self.norm = inner, norm
        self.num_envs, self.n_actions = inner.num_envs, inner.n_actions
        self.obs_dim, self.obs_shape = inner.obs_dim, inner.obs_shape

    def reset(self) -> np.ndarray:
        obs = self.inner.reset()
        self.norm.observe(obs)
        self.norm.flush()  # the first actions already see the first observations' statistics
        return self.norm(obs)

    def step(self, actions: np.ndarray) -> StepResult:
        obs, rew, term, trunc, final = self.inner.step(actions)
        self.norm.observe(obs)
        return self.norm(obs), rew, term, trunc, (None if final is None else self.norm(final))

    def close(self) -> None:
        self.inner.close()


class NormalizedQ:
    """A Q-function (B, D) -> (B, n_actions) that first normalizes with fixed statistics: what
    evaluation, render and a loaded Policy use."""

    def __init__(self, q: Callable[[np.ndarray], np.ndarray], mean: np.ndarray, var: np.ndarray) -> None:
        self.q = q
        self.mean = np.asarray(mean, dtype=np.float32)
        self.scale = scale_of(var).astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.q(normalize(x, self.mean, self.scale))


def stats_tensors(count: float, mean: np.ndarray, var: np.ndarray) -> dict[str, np.ndarray]:
    """The checkpoint tensors of the statistics (float64)."""
    return {PREFIX + "count": np.array([count], dtype=np.float64), PREFIX + "mean": np.asarray(mean, np.float64),
            PREFIX + "var": np.asarray(var, np.float64)}


def stats_from_tensors(tensors: dict[str, Any]) -> Moments | None:
    """(count, mean, var) saved in a checkpoint, or None if it holds none."""
    if PREFIX + "mean" not in tensors:
        return None
    def arr(k: str) -> np.ndarray:
        v = tensors[PREFIX + k]
        return np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float64)
    return float(arr("count")[0]), arr("mean"), arr("var")


def initial_stats(normalize_obs: str, env_id: str, max_episode_steps: int | None = None,
                  env_kwargs: dict[str, Any] | None = None) -> tuple[float, np.ndarray, np.ndarray, bool] | None:
    """(count, mean, var, frozen) a run starts from, or None for --normalize-obs none.
    ValueError (one line) when the environment's observations cannot be normalized that way."""
    if normalize_obs == "none":
        return None
    from asyncdqn.envs import make_env

    env = make_env(env_id, max_episode_steps, env_kwargs=env_kwargs)
    try:
        space = env.observation_space
    finally:
        env.close()
    if normalize_obs == "bounds":
        mean, var = space_bounds_moments(space, env_id)
        return 0.0, mean, var, True
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"{env_id}: --normalize-obs applies to vector observations; {space} is not one "
                         "(images are scaled by the network)")
    dim = int(space.shape[0])
    return 0.0, np.zeros(dim), np.ones(dim), False
