"""Environment creation, space checks and seeding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from asyncdqn.envs import pixels as envs_pixels
from asyncdqn.envs.spaces import FlatObservation, is_image, needs_flattening
from asyncdqn.errors import EnvError


@dataclass(frozen=True)
class EnvSpec:
    """What the learner needs to know about an environment."""

    env_id: str
    obs_dim: int  # number of observation values (the product of obs_shape)
    n_actions: int
    max_episode_steps: int | None
    obs_shape: tuple[int, ...] = ()  # (obs_dim,) for vectors, (C, H, W) for images; () means (obs_dim,)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.obs_shape or (self.obs_dim,)


def make_env(env_id: str, max_episode_steps: int | None = None, *, env_kwargs: dict[str, Any] | None = None,
             learning: bool = False, **kwargs: Any) -> gym.Env:
    """gym.make with a one-line error for unknown ids and bad arguments.

    `env_kwargs` (--env-kwargs) go to gym.make. ALE and MinAtar ids are registered on
    demand and preprocessed (envs_pixels); `learning` adds the wrappers meant for the
    learner only (Atari: life loss terminal, reward clipping), never for evaluation.
    Observations that are neither a 1-D Box nor an image come out flattened to a float32
    1-D Box (envs/spaces.py: Discrete one-hot, Tuple/Dict side by side, ...).
    """
    kwargs = {**(env_kwargs or {}), **kwargs}
    fam = envs_pixels.register(env_id)
    try:
        if fam == "atari":
            return envs_pixels.make_atari(env_id, max_episode_steps, learning, kwargs)
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = max_episode_steps
        env = gym.make(env_id, **kwargs)
        if envs_pixels.needs_channels_first(env):
            return envs_pixels.ImageToChannelsFirst(env)
        return FlatObservation(env) if needs_flattening(env.observation_space) else env
    except gym.error.Error as exc:  # NameNotFound, VersionNotFound, DependencyNotInstalled, ...
        raise EnvError(f"cannot create environment {env_id!r}: {exc}") from None
    except (TypeError, ValueError, ImportError) as exc:
        raise EnvError(f"cannot create environment {env_id!r}: {exc}") from None


def check_spaces(env: gym.Env, env_id: str) -> EnvSpec:
    """Accept a 1-D Box or a (C, H, W) uint8 image Box observation (make_env flattens the other
    spaces it can) and a Discrete action space; anything else is an EnvError."""
    obs, act = env.observation_space, env.action_space
    if not isinstance(obs, gym.spaces.Box) or not (len(obs.shape) == 1 or is_image(obs)):
        raise EnvError(
            f"{env_id}: unsupported observation space {obs}; asyncdqn needs a 1-D Box or a uint8 image Box "
            "(H x W x C or C x H x W) observation"
        )
    if not isinstance(act, gym.spaces.Discrete):
        raise EnvError(f"{env_id}: unsupported action space {act}; asyncdqn needs a Discrete action space")
    if int(act.start) != 0:
        raise EnvError(f"{env_id}: Discrete action space must start at 0, got start={act.start}")
    limit = env.spec.max_episode_steps if env.spec is not None else None
    if envs_pixels.family(env_id) == "atari":  # its TimeLimit, if any, sits above the preprocessing
        limit = envs_pixels.time_limit(env)
    shape = tuple(int(n) for n in obs.shape)
    return EnvSpec(env_id, int(np.prod(shape)), int(act.n), limit, shape)


def inspect_env(env_id: str, max_episode_steps: int | None = None,
                env_kwargs: dict[str, Any] | None = None) -> EnvSpec:
    """Create the environment once, check its spaces, close it."""
    env = make_env(env_id, max_episode_steps, env_kwargs=env_kwargs)
    try:
        return check_spaces(env, env_id)
    finally:
        env.close()


def raw_observation_space(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Space[Any]:
    """The observation space `env_id` has before make_env's wrappers (e.g. Discrete before one-hot)."""
    env = make_env(env_id, env_kwargs=env_kwargs)
    try:
        inner: Any = env
        while isinstance(inner, (FlatObservation, envs_pixels.ImageToChannelsFirst)):
            inner = inner.env
        space: gym.Space[Any] = inner.observation_space
        return space
    finally:
        env.close()


def make_vector_env(env_id: str, n: int, max_episode_steps: int | None = None,
                    env_kwargs: dict[str, Any] | None = None) -> SyncVectorEnv:
    """n copies stepped together, with the learning-only wrappers; an ended episode resets
    within the same step and its true final observation is reported in info["final_obs"]."""
    return SyncVectorEnv(
        [lambda: make_env(env_id, max_episode_steps, env_kwargs=env_kwargs, learning=True) for _ in range(n)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )


def env_seeds(base_seed: int, stream: int, n: int) -> list[int]:
    """n independent 32-bit seeds for stream `stream` (a worker, or an evaluation)."""
    ss = np.random.SeedSequence([base_seed, stream])
    return [int(s) for s in ss.generate_state(n, dtype=np.uint32)]
