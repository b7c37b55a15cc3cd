"""Environment creation, space checks and seeding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from asyncdqn.errors import EnvError


@dataclass(frozen=True)
class EnvSpec:
    """What the learner needs to know about an environment."""

    env_id: str
    obs_dim: int
    n_actions: int
    max_episode_steps: int | None


def make_env(env_id: str, max_episode_steps: int | None = None, **kwargs: Any) -> gym.Env:
    """gym.make with a one-line error for unknown ids and bad arguments."""
    try:
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = max_episode_steps
        return gym.make(env_id, **kwargs)
    except gym.error.Error as exc:  # NameNotFound, VersionNotFound, DependencyNotInstalled, ...
        raise EnvError(f"cannot create environment {env_id!r}: {exc}") from None
    except (TypeError, ValueError, ImportError) as exc:
        raise EnvError(f"cannot create environment {env_id!r}: {exc}") from None


def check_spaces(env: gym.Env, env_id: str) -> EnvSpec:
    """Accept a 1-D Box observation and a Discrete action space; anything else is an EnvError."""
    obs, act = env.observation_space, env.action_space
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise EnvError(
            f"{env_id}: unsupported observation space {obs}; asyncdqn needs a 1-D Box observation"
        )
    if not isinstance(act, gym.spaces.Discrete):
        raise EnvError(f"{env_id}: unsupported action space {act}; asyncdqn needs a Discrete action space")
    if int(act.start) != 0:
        raise EnvError(f"{env_id}: Discrete action space must start at 0, got start={act.start}")
    limit = env.spec.max_episode_steps if env.spec is not None else None
    return EnvSpec(env_id, int(obs.shape[0]), int(act.n), limit)


def inspect_env(env_id: str, max_episode_steps: int | None = None) -> EnvSpec:
    """Create the environment once, check its spaces, close it."""
    env = make_env(env_id, max_episode_steps)
    try:
        return check_spaces(env, env_id)
    finally:
        env.close()


def make_vector_env(env_id: str, n: int, max_episode_steps: int | None = None) -> SyncVectorEnv:
    """n copies stepped together; an ended episode resets within the same step and
    its true final observation is reported in info["final_obs"]."""
    return SyncVectorEnv(
        [lambda: make_env(env_id, max_episode_steps) for _ in range(n)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )


def env_seeds(base_seed: int, stream: int, n: int) -> list[int]:
    """n independent 32-bit seeds for stream `stream` (a worker, or an evaluation)."""
    ss = np.random.SeedSequence([base_seed, stream])
    return [int(s) for s in ss.generate_state(n, dtype=np.uint32)]
