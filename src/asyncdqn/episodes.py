"""What a worker reports for each finished episode.

Plain Python (no torch): the Ray parameter server relays these records between node groups
and the driver, and it imports nothing heavier than numpy (`backends/ray_server.py`).
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
