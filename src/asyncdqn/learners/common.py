"""What every learner shares: the episode records it reports, the small interfaces through
which it reaches shared state, its exploration bookkeeping, its seeds, and its divergence checks.

A learner knows nothing of processes. Whatever it shares with other learners comes in
through four small interfaces (implemented in `backends/base.py`):

- `StepCounter.add(worker, n) -> (old, new)`: the global env-step count, bumped
  once per segment (never per step);
- `TargetStore`: the target network, copied race-free (a version number and a lock
  taken once per segment at most) into a learner-local copy;
- `EpisodeSink.put(record)`: finished episodes, for the trainer's metrics;
- an optimizer with `step(lr) -> t` over the shared model's parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np
import torch
from torch import nn

from asyncdqn.algo.exploration import (
    decay_per_episode,
    linear_epsilon,
    sample_final_epsilons,
)
from asyncdqn.config import Config
from asyncdqn.envs import env_seeds
from asyncdqn.episodes import EpisodeRecord
from asyncdqn.errors import DivergedError, TrainingError


class StepCounter(Protocol):
    @property
    def value(self) -> int: ...
    def add(self, worker: int, n: int) -> tuple[int, int]: ...


class TargetStore(Protocol):
    @property
    def version(self) -> int: ...
    def read_into(self, arrays: list[np.ndarray]) -> int: ...
    def sync_from(self, model: nn.Module, step: int) -> None: ...


class EpisodeSink(Protocol):
    def put(self, record: EpisodeRecord) -> None: ...


class Optimizer(Protocol):
    def step(self, lr: float | None = None) -> int: ...
    def zero_grad(self) -> None: ...


def worker_env_seeds(seed: int, index: int, k: int, resume_count: int = 0, generation: int = 0) -> list[int]:
    """Env seeds of learner `index`; a resumed run (resume_count > 0) or a restarted learner
    (generation > 0) gets fresh ones, so it does not replay episodes already played.
    The one seeding rule of every learner and backend (see also `learner_rngs`)."""
    if resume_count == 0 and generation == 0:
        return env_seeds(seed, 1 + index, k)
    ss = np.random.SeedSequence([seed, 1 + index, resume_count, *([generation] if generation else [])])
    return [int(s) for s in ss.generate_state(k, dtype=np.uint32)]


def learner_rngs(seed: int, index: int, resume_count: int = 0,
                 generation: int = 0) -> tuple[np.random.Generator, np.random.Generator]:
    """(exploration, actions) generators of learner `index`.

    The exploration generator draws the final epsilons: the same on every resume and
    restart. Actions continue from it in a fresh run, and get a fresh stream of their
    own in a resumed run or a restarted learner.
    """
    base = np.random.default_rng([seed, 7919, index])
    if resume_count or generation:
        return base, np.random.default_rng([seed, 7919, index, resume_count, generation])
    return base, base


class Learner(Protocol):
    """What a backend drives: one learner's segments, its exploration rate, its environments."""

    steps_done: int

    def run_segment(self) -> int: ...
    def epsilon(self) -> float: ...
    def close(self) -> None: ...


class EpisodeBook:
    """A learner's K environments' bookkeeping: exploration rates, running episodes, and the
    mean TD loss reported with each finished episode. Serves ActorLearner and DQNLearner."""

    def __init__(self, cfg: Config, index: int, k: int, rng: np.random.Generator, sink: EpisodeSink) -> None:
        self.cfg, self.index, self.sink = cfg, index, sink
        # Final epsilon per worker (paper) or per environment, drawn from `rng`.
        n_draws = 1 if cfg.eps_draw == "worker" else k
        finals = sample_final_epsilons(rng, n_draws, cfg.final_epsilons, cfg.final_epsilon_probs)
        self.final_eps = np.broadcast_to(finals, (k,)).astype(np.float64)
        self.eps = np.full(k, cfg.eps_start, dtype=np.float64)  # current epsilons
        self.ep_return = np.zeros(k, dtype=np.float64)
        self.ep_len = np.zeros(k, dtype=np.int64)
        self._loss_sum, self._loss_count = 0.0, 0  # updates since the last EpisodeRecord

    def update_epsilon(self, global_step: int) -> None:
        if self.cfg.eps_schedule == "linear":
            self.eps = np.asarray(linear_epsilon(
                global_step, self.cfg.eps_start, self.final_eps, self.cfg.eps_anneal_steps), dtype=np.float64)
        # episode-decay epsilons change only at episode ends (see end)

    def step(self, rewards: np.ndarray) -> None:
        self.ep_return += rewards
        self.ep_len += 1

    def add_loss(self, value: float) -> None:
        self._loss_sum += value
        self._loss_count += 1

    def end(self, ended: np.ndarray, step: int) -> None:
        """Report the episodes of the envs `ended` (at global env step `step`) and reset them."""
        for k in np.flatnonzero(ended):
            mean_loss = self._loss_sum / self._loss_count if self._loss_count else float("nan")
            self._loss_sum, self._loss_count = 0.0, 0
            self.sink.put(EpisodeRecord(self.index, step, float(self.ep_return[k]), int(self.ep_len[k]),
                                        float(self.eps[k]), mean_loss))
            if self.cfg.eps_schedule == "episode-decay":
                self.eps[k] = decay_per_episode(self.eps[k], self.cfg.eps_decay, self.cfg.eps_min)
        self.ep_return[ended] = 0.0
        self.ep_len[ended] = 0

    def mean_epsilon(self) -> float:
        return float(self.eps.mean())


class RunawayCheck:
    """Stops a run whose Q-values left every range the rewards allow, while still finite.

    No return exceeds max|r| / (1 - gamma) in magnitude, so neither can a Q-value that
    learning is converging to. A TD loss implying |Q - y| a thousand times beyond that
    bound (with Adam's bounded steps, e.g. --lr 1e10, weights blow up but stay finite)
    is divergence, not learning; healthy runs stay orders of magnitude below it.
    """

    def __init__(self, cfg: Config, where: str) -> None:
        self.cfg, self.where = cfg, where
        self.max_abs_reward = 0.0  # largest |reward| seen: bounds every plausible Q-value

    def __call__(self, loss_value: float, rewards: np.ndarray) -> None:
        """Check one update's loss; `rewards` are those its targets were built from."""
        self.check(loss_value, float(np.abs(rewards).max()) if rewards.size else 0.0)

    def check(self, loss_value: float, max_abs_reward: float) -> None:
        """`__call__` given the largest |reward| of the update's rewards instead of the rewards."""
        gamma = self.cfg.gamma
        self.max_abs_reward = max(self.max_abs_reward, max_abs_reward)
        if gamma >= 1.0 or not self.cfg.runaway_check:
            return
        limit = 1e3 * (self.max_abs_reward / (1.0 - gamma) + 1.0)
        if loss_value > (limit if self.cfg.loss == "huber" else limit * limit):
            raise DivergedError(
                f"{self.where}: the TD loss ({loss_value:.3g}) implies Q-values far beyond any return "
                f"the rewards seen allow (|r| <= {self.max_abs_reward:.3g}, gamma {gamma:g}): "
                "training diverged (lower --lr?)")


def non_finite_error(where: str, observations: Iterable[np.ndarray], rewards: np.ndarray,
                     params: Iterable[torch.Tensor]) -> TrainingError:
    """The error naming the source of a non-finite TD loss: the environment's numbers
    (the weights are still good), or divergence of the shared model (they are not)."""
    if not all(np.isfinite(o).all() for o in observations):
        return TrainingError(f"{where}: the environment returned a non-finite observation (NaN/inf)")
    if not np.isfinite(rewards).all():
        return TrainingError(f"{where}: the environment returned a non-finite reward (NaN/inf)")
    if not all(torch.isfinite(p).all() for p in params):
        return DivergedError(f"{where}: the Q-network's parameters became non-finite: training diverged (lower --lr?)")
    return DivergedError(f"{where}: the TD loss became non-finite: training diverged (lower --lr?)")
