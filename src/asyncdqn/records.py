"""The record of one finished episode, as workers report it to the trainer.

A module of its own, without torch: the ray parameter server's process unpickles the
records that node groups send it, and should not import torch for that (see
`backends/ray_server.py`). `asyncdqn.learners.common` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EpisodeRecord:
    worker: int
    step: int  # global env step at which the episode ended (approximate across workers)
    episode_return: float
    length: int
    epsilon: float
    # Mean TD loss over this worker's updates since its previous record (NaN if none);
    # diagnostic only, so records compare equal without it.
    mean_loss: float = field(default=float("nan"), compare=False)
