"""The learners: what one actor-learner does, knowing nothing of processes.

- `common`: episode records, the interfaces to shared state, exploration bookkeeping,
  seeds and divergence checks, shared by every learner;
- `async_q`: the asynchronous actor-learner (one-step Q, n-step Q, one-step Sarsa);
- `dqn`: the replay-buffer DQN baseline.
"""

from __future__ import annotations

from torch import nn

from asyncdqn.config import Config
from asyncdqn.envs.normalize import ObsStats
from asyncdqn.learners.common import (
    EpisodeSink,
    Learner,
    Optimizer,
    StepCounter,
    TargetStore,
)


def make_learner(cfg: Config, index: int, model: nn.Module, optimizer: Optimizer, target: TargetStore,
                 counter: StepCounter, sink: EpisodeSink, generation: int = 0,
                 obs_stats: ObsStats | None = None) -> Learner:
    """Learner `index` (restart `generation`) of the run's algorithm, wired to the shared state."""
    if cfg.algo == "dqn":
        from asyncdqn.learners.dqn import DQNLearner

        return DQNLearner(cfg, model, optimizer, target, counter, sink, index, generation, obs_stats)
    from asyncdqn.learners.async_q import ActorLearner

    return ActorLearner(cfg, index, model, optimizer, target, counter, sink, generation, obs_stats)


__all__ = ["Learner", "make_learner"]
