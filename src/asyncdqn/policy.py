"""A trained agent you can load and use: `load_policy(run_dir)` -> `Policy`.

Notebook use::

    import asyncdqn
    policy = asyncdqn.load_policy("runs/CartPole-v1-n-step-q-20261201-040000")   # best checkpoint
    obs, _ = gymnasium.make(policy.env_id).reset(seed=0)
    action = policy.act(obs)                       # greedy action (an int)
    print(policy.evaluate(episodes=20, seed=1).mean)

`which` picks the weights: "best" (the best greedy evaluation of the run; the
solving snapshot when it solved), "final" (the weights when training stopped),
"latest" (the newest verified rotating training checkpoint: a run still in
progress or interrupted), or a file name inside RUN_DIR/checkpoints.
Checkpoints holding a Polyak weight average (--average-steps) hand out the
average, the policy the run itself evaluated. A run trained with --normalize-obs
normalizes observations with the statistics saved beside the weights.

Observations of spaces that training flattens (Discrete, MultiDiscrete, MultiBinary,
n-D Box, Tuple/Dict; envs/spaces.py) may be given as the environment returns them
(one at a time) or already flattened.

Every failure a user can hit (no run directory, no such checkpoint, a corrupt file,
weights that do not fit the run's network) raises RunDirError or CheckpointError
with a one-line message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from asyncdqn.config import Config
from asyncdqn.envs.normalize import NormalizedQ, stats_from_tensors
from asyncdqn.envs.spaces import flat_observation, needs_flattening
from asyncdqn.errors import CheckpointError
from asyncdqn.evaluate import DEFAULT_EPISODES, DEFAULT_SEED, EvalResult, evaluate

WHICH = ("best", "final", "latest")


def build_network(cfg: Config, obs_shape: tuple[int, ...], n_actions: int) -> nn.Module:
    """The Q-network a run with `cfg` trains (its shape only; weights are loaded after)."""
    from asyncdqn.model import build_network as build

    try:
        return build(cfg.network, obs_shape, n_actions, cfg.hidden_sizes, 0, cfg.layer_norm)
    except ValueError as exc:
        raise CheckpointError(f"cannot build the run's network: {exc}") from None


@dataclass
class Policy:
    """A trained Q-network with the run it belongs to. Acting is greedy unless asked otherwise."""

    network: nn.Module
    config: Config
    obs_shape: tuple[int, ...]
    n_actions: int
    source: Path  # the checkpoint file the weights came from
    step: int | None = None  # global env step of those weights, when the checkpoint records it
    obs_stats: tuple[float, np.ndarray, np.ndarray] | None = None  # (count, mean, var) of --normalize-obs
    _q: Callable[[np.ndarray], np.ndarray] = field(init=False, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from asyncdqn.model import q_function

        self._q = q_function(self.network)  # numpy mirror of an MLP (fast), torch for conv nets
        if self.obs_stats is not None:
            self._q = NormalizedQ(self._q, self.obs_stats[1], self.obs_stats[2])
        self._rng = np.random.default_rng()
        self._raw_space: Any = None  # the env's own observation space, looked up on first need

    @property
    def env_id(self) -> str:
        return self.config.env_id

    @property
    def obs_dim(self) -> int:
        """Size of a flat observation (vector environments)."""
        return int(np.prod(self.obs_shape))

    def _flattened(self, obs: Any) -> Any:
        """`obs` flattened as training saw it, if it is one raw observation of a flattened space."""
        if len(self.obs_shape) != 1:
            return obs
        try:
            shape = np.shape(obs)
        except ValueError:  # e.g. a Tuple's parts of different shapes
            shape = None
        if shape is not None and (shape == self.obs_shape or shape[1:] == self.obs_shape):
            return obs  # flat already: one observation or a batch
        if self._raw_space is None:
            from asyncdqn.envs import raw_observation_space

            self._raw_space = raw_observation_space(self.env_id, self.config.env_kwargs)
        if not needs_flattening(self._raw_space):
            return obs
        try:
            return flat_observation(self._raw_space, obs)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError):
            return obs  # not one of its observations: _batch names the shape expected

    def _batch(self, obs: Any) -> tuple[np.ndarray, bool]:
        x = np.asarray(self._flattened(obs))
        if len(self.obs_shape) == 1:
            x = x.astype(np.float32, copy=False)  # images stay uint8: the conv net scales them
        single = x.shape == self.obs_shape
        if single:
            x = x[None]
        if x.shape[1:] != self.obs_shape:
            raise ValueError(f"expected an observation of shape {self.obs_shape} or a batch (B, "
                             f"{', '.join(map(str, self.obs_shape))}) for {self.env_id}, got shape {np.shape(obs)}")
        return x, single

    def q_values(self, obs: Any) -> np.ndarray:
        """Q-values: shape (n_actions,) for one observation, (B, n_actions) for a batch."""
        x, single = self._batch(obs)
        q = np.asarray(self._q(x))
        return q[0] if single else q

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """(B, *obs_shape) -> (B, n_actions): a Policy is a Q-function for `evaluate` and `render`."""
        return np.asarray(self._q(self._batch(obs)[0]))

    def act(self, obs: Any, epsilon: float = 0.0, rng: np.random.Generator | None = None) -> Any:
        """Greedy action (an int) for one observation, an int array for a batch.

        With `epsilon` > 0 each action is uniformly random with that probability
        (drawn from `rng`, or the policy's own generator).
        """
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        x, single = self._batch(obs)
        actions = np.asarray(self._q(x)).argmax(axis=1)
        if epsilon > 0.0:
            g = rng if rng is not None else self._rng
            explore = g.random(len(actions)) < epsilon
            actions = np.where(explore, g.integers(0, self.n_actions, len(actions)), actions)
        return int(actions[0]) if single else actions.astype(np.int64)

    def evaluate(self, episodes: int = DEFAULT_EPISODES, seed: int = DEFAULT_SEED, round_index: int = 0,
                 epsilon: float | None = None) -> EvalResult:
        """Returns over `episodes` freshly seeded episodes of the run's environment (deterministic for
        (seed, round_index); the same protocol as the trainer's evaluations, with the run's
        --eval-episode-seconds bound: a cut-short result says so in `complete`), acting with
        `epsilon`: None takes the run's --eval-epsilon (0, greedy, unless the run set it)."""
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        eps = self.config.eval_epsilon if epsilon is None else epsilon
        return evaluate(self, self.env_id, episodes, seed, round_index, self.config.max_episode_steps,
                        env_kwargs=self.config.env_kwargs, episode_seconds=self.config.eval_episode_seconds,
                        epsilon=eps)


def _checkpoint_path(run: Any, which: str) -> Path:
    from asyncdqn.rundir.layout import CHECKPOINTS

    path: Path = run.checkpoint(which)
    if not path.is_file():
        present = sorted(p.name for p in (run.path / CHECKPOINTS).glob("*.safetensors")) \
            if (run.path / CHECKPOINTS).is_dir() else []
        hint = f"; present: {', '.join(present)}" if present else "; the run wrote no checkpoint"
        raise CheckpointError(f"no {which!r} checkpoint in {run.path / CHECKPOINTS}{hint}")
    return path


def load_policy(run_dir: str | Path, which: str = "best") -> Policy:
    """The policy of the run in `run_dir`: "best", "final", "latest" or a checkpoint file name.

    RunDirError when `run_dir` is not a run directory; CheckpointError when the
    checkpoint is missing, corrupt, or does not fit the run's network.
    """
    from asyncdqn.rundir.checkpoint import CheckpointStore, load_checkpoint, load_weights, policy_prefix
    from asyncdqn.rundir.layout import CHECKPOINTS, load_run

    run = load_run(run_dir)
    if which == "latest":
        loaded = CheckpointStore(run.path / CHECKPOINTS, run.config.keep_checkpoints).latest()
        tensors, meta, path = loaded.tensors, loaded.meta, loaded.path
    else:
        if not which or "/" in which or which in (".", ".."):
            raise CheckpointError(f"which: expected one of {', '.join(WHICH)} or a file name in "
                                  f"{run.path / CHECKPOINTS}, got {which!r}")
        path = _checkpoint_path(run, which)
        tensors, meta = load_checkpoint(path)
    for key in ("obs_dim", "n_actions"):
        if key in meta and meta[key] != getattr(run, key):
            raise CheckpointError(f"{path} does not belong to {run.path}: {key} {meta[key]!r} in the checkpoint "
                                  f"vs {getattr(run, key)!r} in config.json")
    network = build_network(run.config, run.shape, run.n_actions)
    load_weights(network, tensors, policy_prefix(tensors), str(path))
    step = meta.get("step")
    return Policy(network, run.config, run.shape, run.n_actions, path,
                  int(step) if isinstance(step, int) else None, stats_from_tensors(tensors))
