"""Vector steppers: K environments stepped together, one interface for the worker.

Both implementations keep the same transition contract (Gymnasium's SAME_STEP
auto-reset), which is what the worker's TD targets rely on:

    obs, rewards, terminated, truncated, final_obs = stepper.step(actions)

- `obs[k]`: the observation to act on next: for an env whose episode ended at this
  step, the FIRST observation of its next episode (already reset);
- `rewards[k]`, `terminated[k]` (a terminal state: no bootstrap), `truncated[k]`
  (time limit: bootstrap from the final state);
- `final_obs`: None if no episode ended, else an (n_ended, obs_dim) array holding the
  TRUE final observation of each env in `np.flatnonzero(terminated | truncated)`,
  in that order (the state to bootstrap from).

`GymnasiumStepper` steps a plain list of Gymnasium envs (leaner than SyncVectorEnv,
same trajectories for the same seeds: tested against SyncVectorEnv(SAME_STEP)).
`EnvPoolStepper` steps one EnvPool instance (C++ envs; optional `envpool` extra).
EnvPool auto-resets on the NEXT step (that step ignores the action and returns the
reset observation with reward 0); the adapter instead resets the ended envs right
away (`reset(env_ids)`), which gives the same observation EnvPool's auto-reset would
have, so the worker sees the contract above and no extra pseudo-transition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from asyncdqn.envs import make_env
from asyncdqn.errors import EnvError

VECTORS = ("gymnasium", "envpool")

# Gymnasium ids whose EnvPool counterpart we support (same dynamics, checked by
# tests/envs/test_vector.py's equivalence test). Atari is not supported here (pixels).
ENVPOOL_IDS = ("LunarLander-v3", "CartPole-v1", "Acrobot-v1", "MountainCar-v0")

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"]


class VectorStepper(Protocol):
    num_envs: int
    n_actions: int
    obs_dim: int
    obs_shape: tuple[int, ...]

    def reset(self) -> np.ndarray:
        """First observations (K, *obs_shape): float32, or uint8 for images (seeds were given at construction)."""
        ...

    def step(self, actions: np.ndarray) -> StepResult: ...

    def close(self) -> None: ...


# Wrappers gym.make adds that the lean stepper may replace by its own loop: order
# checks (the stepper always resets first), the passive checker (inspect_env checked
# the spaces) and the time limit (counted here, with TimeLimit's rule).
_STRIPPABLE = ("PassiveEnvChecker", "OrderEnforcing", "TimeLimit")


class _IntDiscrete(gym.spaces.Discrete):
    """Discrete(n) whose membership test of a Python int is one comparison: Gymnasium's
    builds np.iinfo per call, a fifth of LunarLander's step (its step asserts
    `action_space.contains(action)`). Same answer for every value."""

    def __init__(self, space: gym.spaces.Discrete) -> None:
        super().__init__(int(space.n), seed=None, start=int(space.start), dtype=space.dtype)
        self._lo, self._hi = int(space.start), int(space.start) + int(space.n)

    def contains(self, x: Any) -> bool:
        if type(x) is int:
            return self._lo <= x < self._hi
        return super().contains(x)


def _strip(env: gym.Env) -> tuple[gym.Env, int | None]:
    """The innermost env and the time limit if env's wrappers are only the standard ones,
    else (env, None) unchanged with a limit of None meaning 'the wrappers handle it'."""
    limit = None
    inner: Any = env
    while isinstance(inner, gym.Wrapper):
        name = type(inner).__name__
        if name not in _STRIPPABLE:
            return env, None
        if name == "TimeLimit":
            limit = int(inner._max_episode_steps)  # type: ignore[attr-defined]
        inner = inner.env
    if type(inner.action_space) is gym.spaces.Discrete:
        inner.action_space = _IntDiscrete(inner.action_space)
    return inner, limit


class GymnasiumStepper:
    """K Gymnasium envs in a plain list, reset in the step their episode ends.

    Same seeding as SyncVectorEnv.reset(seed=seeds): env i is reset once with seeds[i],
    later resets continue its own generator. When the env carries only gym.make's
    standard wrappers they are bypassed and the time limit is counted here exactly as
    TimeLimit does (truncated = steps >= limit, terminated reported as is).
    """

    def __init__(self, env_id: str, seeds: Sequence[int], max_episode_steps: int | None = None,
                 env_kwargs: dict[str, Any] | None = None, lean: bool = True) -> None:
        self.env_id = env_id
        # learning=True: the learner-only wrappers (e.g. Atari's life-loss terminal), as SyncVectorEnv had
        self._wrapped = [make_env(env_id, max_episode_steps, env_kwargs=env_kwargs, learning=True) for _ in seeds]
        self.seeds = [int(s) for s in seeds]
        self.num_envs = len(self._wrapped)
        space = self._wrapped[0].action_space
        self.n_actions = int(space.n)  # type: ignore[attr-defined]
        obs_space = self._wrapped[0].observation_space
        self.obs_shape = tuple(int(n) for n in (obs_space.shape or (1,)))
        self.obs_dim = int(np.prod(self.obs_shape))
        self.obs_dtype = np.uint8 if obs_space.dtype == np.uint8 else np.float32  # images stay uint8
        stripped = [_strip(e) for e in self._wrapped] if lean else [(e, None) for e in self._wrapped]
        self.envs = [s[0] for s in stripped]
        self.limits = [s[1] for s in stripped]
        self._elapsed = [0] * self.num_envs

    def reset(self) -> np.ndarray:
        obs = [env.reset(seed=s)[0] for env, s in zip(self.envs, self.seeds, strict=True)]
        self._elapsed = [0] * self.num_envs
        return np.asarray(obs, dtype=self.obs_dtype).reshape(self.num_envs, *self.obs_shape)

    def step(self, actions: np.ndarray) -> StepResult:
        k = self.num_envs
        obs = np.empty((k, *self.obs_shape), dtype=self.obs_dtype)
        rew = np.empty(k, dtype=np.float32)
        term = np.zeros(k, dtype=bool)
        trunc = np.zeros(k, dtype=bool)
        finals: list[np.ndarray] = []
        elapsed, limits = self._elapsed, self.limits
        for i, (env, a) in enumerate(zip(self.envs, actions.tolist(), strict=True)):  # python ints: cheap checks
            o, r, te, tr, _ = env.step(a)
            limit = limits[i]
            if limit is not None:
                elapsed[i] += 1
                if elapsed[i] >= limit:
                    tr = True
            rew[i] = r
            if te or tr:
                term[i], trunc[i] = te, tr
                finals.append(np.asarray(o, dtype=self.obs_dtype).reshape(self.obs_shape))
                o, _ = env.reset()
                elapsed[i] = 0
            obs[i] = np.asarray(o).reshape(self.obs_shape)
        return obs, rew, term, trunc, (np.stack(finals) if finals else None)

    def close(self) -> None:
        for e in self._wrapped:
            e.close()


def _import_envpool() -> Any:
    try:
        import envpool
    except ImportError as exc:
        raise EnvError(f"--vector envpool needs the envpool package (pip install 'asyncdqn[envpool]'): {exc}") from None
    return envpool


def check_envpool_env(env_id: str) -> None:
    """EnvError (one line) unless EnvPool can stand in for Gymnasium's `env_id`."""
    envpool = _import_envpool()
    if env_id not in ENVPOOL_IDS or env_id not in envpool.list_all_envs():
        raise EnvError(f"--vector envpool: EnvPool has no supported counterpart of {env_id!r} "
                       f"(supported: {', '.join(ENVPOOL_IDS)}); use --vector gymnasium")


class EnvPoolStepper:
    """One EnvPool instance (sync mode, batch = all K envs, 1 C++ thread) behind the SAME_STEP contract.

    Seeds: env i gets seeds[i] (mod 2^31: EnvPool takes int32 seeds) at creation; like
    Gymnasium, later episodes continue that env's own generator. The generators differ
    from Gymnasium's, so trajectories match only in distribution (tests/envs/test_vector.py).
    """

    def __init__(self, env_id: str, seeds: Sequence[int], max_episode_steps: int | None = None,
                 env_kwargs: dict[str, Any] | None = None, num_threads: int = 1) -> None:
        check_envpool_env(env_id)
        if env_kwargs:
            raise EnvError("--vector envpool does not take --env-kwargs (EnvPool's options differ from gym.make's)")
        envpool = _import_envpool()
        self.env_id = env_id
        self.num_envs = len(seeds)
        kwargs: dict[str, Any] = {"num_envs": self.num_envs, "batch_size": self.num_envs,
                                  "num_threads": num_threads, "seed": [int(s) % 2**31 for s in seeds]}
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = int(max_episode_steps)
        import warnings
        with warnings.catch_warnings():  # its Box bounds are float64 cast to float32
            warnings.simplefilter("ignore")
            self.pool = envpool.make(env_id, env_type="gymnasium", **kwargs)
            self.n_actions = int(self.pool.action_space.n)
            self.obs_shape = tuple(int(n) for n in self.pool.observation_space.shape)
            self.obs_dim = int(np.prod(self.obs_shape))
        self._order = np.arange(self.num_envs, dtype=np.int32)
        self._raw = self._raw_layout()

    # EnvPool 1.2.5's C++ interface of a single-player env: actions are sent as [env_id,
    # players.env_id, action] and a step comes back as one array per state key. Its Python
    # `step()` spends ~50 µs per call around that (action checks, a tree of dicts, the info dict),
    # a fifth of a LunarLander step of 8 envs; the raw calls skip it.
    _RAW_ACTIONS = ("env_id", "players.env_id", "action")
    _RAW_STATE = ("info:env_id", "done", "reward", "trunc", "obs")

    def _raw_layout(self) -> tuple[int, ...] | None:
        """Positions of _RAW_STATE in a raw step's arrays, or None (then the public `step()` is used)
        unless this pool has exactly the layout the raw path was written against."""
        pool = self.pool
        try:
            actions, states = list(pool._spec._action_keys), list(pool._state_keys)
            single = pool.config.get("max_num_players", 1) == 1
        except AttributeError:  # another EnvPool version
            return None
        if tuple(actions) != self._RAW_ACTIONS or not single or not all(k in states for k in self._RAW_STATE):
            return None
        return tuple(states.index(k) for k in self._RAW_STATE)

    def _pool_step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """(env ids, obs, reward, terminated, truncated) of one step of all envs, EnvPool's Gymnasium
        semantics (terminated = done and not truncated)."""
        acts = np.ascontiguousarray(actions, dtype=np.int32)
        if self._raw is None:
            obs, rew, term, trunc, info = self.pool.step(acts, self._order)
            return info["env_id"], obs, rew, term, trunc
        self.pool._send([self._order, self._order, acts])
        state = self.pool._recv()
        i_ids, i_done, i_rew, i_trunc, i_obs = self._raw
        trunc = state[i_trunc]
        return state[i_ids], state[i_obs], state[i_rew], state[i_done] & ~trunc, trunc

    def reset(self) -> np.ndarray:
        obs, info = self.pool.reset()
        return self._ordered(np.asarray(obs, dtype=np.float32), info)

    def _ordered(self, x: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        ids = info["env_id"]
        if not np.array_equal(ids, self._order):  # sync mode returns env order; never trust it blindly
            out = np.empty_like(x)
            out[ids] = x
            return out
        return x

    def step(self, actions: np.ndarray) -> StepResult:
        ids, obs, rew, term, trunc = self._pool_step(actions)
        if not (ids == self._order).all():
            inv = np.argsort(ids)
            obs, rew, term, trunc = obs[inv], rew[inv], term[inv], trunc[inv]
        obs = np.asarray(obs, dtype=np.float32)
        done = term | trunc
        final = None
        if done.any():
            idx = np.flatnonzero(done).astype(np.int32)
            obs = obs.copy()  # before resetting: EnvPool may reuse its output buffers
            final = obs[idx]  # the true final observations (a copy: fancy indexing)
            # Reset the ended envs now (EnvPool would do it on the next step, spending that
            # step's action): same reset observation, no pseudo-transition.
            new_obs, rinfo = self.pool.reset(idx)
            obs[rinfo["env_id"]] = new_obs
        return (obs, np.asarray(rew, dtype=np.float32), np.asarray(term, dtype=bool), np.asarray(trunc, dtype=bool),
                final)

    def close(self) -> None:
        self.pool.close()


def make_stepper(vector: str, env_id: str, seeds: Sequence[int], max_episode_steps: int | None = None,
                 env_kwargs: dict[str, Any] | None = None) -> VectorStepper:
    """The stepper named by --vector over len(seeds) envs."""
    if vector == "gymnasium":
        return GymnasiumStepper(env_id, seeds, max_episode_steps, env_kwargs)
    if vector == "envpool":
        return EnvPoolStepper(env_id, seeds, max_episode_steps, env_kwargs)
    raise EnvError(f"unknown vector stepper {vector!r}; known: {', '.join(VECTORS)}")


def check_vector(cfg: Any) -> None:
    """Before any worker starts: EnvError (exit 2) if cfg's vector stepper cannot serve cfg's env."""
    if cfg.vector == "envpool":
        check_envpool_env(cfg.env_id)
