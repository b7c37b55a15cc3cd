"""`--tensorboard`: the run's scalars as a TensorBoard event log in RUN_DIR/tensorboard.

Optional extra (`pip install asyncdqn[tensorboard]`); imported only when enabled.
All scalars use the global env step as the x axis:

    train/episode_return   one point per finished training episode
    train/epsilon          that episode's epsilon
    train/loss             mean TD loss of its worker's updates since the worker's previous episode
    eval/mean, eval/std    every greedy evaluation
    speed/steps_per_s      global env steps/s since the previous rate point (about once a second)
    speed/worker_<i>       the same, per worker
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from asyncdqn.config import Config
from asyncdqn.episodes import EpisodeRecord
from asyncdqn.errors import ConfigError

TB_DIR = "tensorboard"
RATE_INTERVAL_S = 1.0


class NullLog:
    """--no-tensorboard: every call is a no-op, so the trainer needs no conditionals."""

    def episode(self, rec: EpisodeRecord) -> None: ...
    def evaluation(self, step: int, mean: float, std: float) -> None: ...
    def rates(self, step: int, wall: float, per_worker: list[int]) -> None: ...
    def close(self) -> None: ...


class TensorBoardLog(NullLog):
    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError("tensorboard: --tensorboard needs the optional 'tensorboard' package "
                              f"(pip install 'asyncdqn[tensorboard]'): {exc}") from None
        self.writer: Any = SummaryWriter(log_dir=str(log_dir))
        self._last: tuple[float, int, list[int]] | None = None

    def episode(self, rec: EpisodeRecord) -> None:
        w = self.writer
        w.add_scalar("train/episode_return", rec.episode_return, rec.step)
        w.add_scalar("train/epsilon", rec.epsilon, rec.step)
        if math.isfinite(rec.mean_loss):
            w.add_scalar("train/loss", rec.mean_loss, rec.step)

    def evaluation(self, step: int, mean: float, std: float) -> None:
        self.writer.add_scalar("eval/mean", mean, step)
        self.writer.add_scalar("eval/std", std, step)

    def rates(self, step: int, wall: float, per_worker: list[int]) -> None:
        """Steps/s since the previous point; called often, writes about once per RATE_INTERVAL_S."""
        if self._last is None:
            self._last = (wall, step, list(per_worker))
            return
        t0, s0, pw0 = self._last
        dt = wall - t0
        if dt < RATE_INTERVAL_S:
            return
        self.writer.add_scalar("speed/steps_per_s", (step - s0) / dt, step)
        for i, (a, b) in enumerate(zip(pw0, per_worker, strict=False)):
            self.writer.add_scalar(f"speed/worker_{i}", (b - a) / dt, step)
        self._last = (wall, step, list(per_worker))

    def close(self) -> None:
        self.writer.close()


def open_log(cfg: Config, run_dir: Path) -> NullLog:
    """A TensorBoard log in RUN_DIR/tensorboard if --tensorboard, else a no-op log."""
    return TensorBoardLog(run_dir / TB_DIR) if cfg.tensorboard else NullLog()
