"""metrics.csv: one row per finished training episode and per greedy evaluation."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from asyncdqn.errors import RunDirError
from asyncdqn.plotting import METRICS_COLUMNS

# The plotted columns, plus how many episodes each evaluation played.
COLUMNS = (*METRICS_COLUMNS, "eval_episodes")


class MetricsWriter:
    """Appends rows (line-buffered, so a crash loses at most the current line)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = open(self.path, "a", newline="", buffering=1)
        self._w = csv.writer(self._f)
        if new:
            self._row(COLUMNS)

    def _row(self, row: Sequence[object]) -> None:
        try:
            self._w.writerow(row)
        except OSError as exc:  # full disk: name the file (write errors carry no file name)
            raise RunDirError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def episode(self, step: int, wall_time: float, worker: int, ret: float, length: int, eps: float) -> None:
        self._row(["episode", step, f"{wall_time:.3f}", worker, f"{ret:.4f}", length, f"{eps:.4f}", "", "", ""])

    def evaluation(self, step: int, wall_time: float, mean: float, std: float, episodes: int) -> None:
        self._row(["eval", step, f"{wall_time:.3f}", "", "", "", "", f"{mean:.4f}", f"{std:.4f}", episodes])

    def close(self) -> None:
        try:
            self._f.close()
        except OSError:  # the flush of a row that already failed (and was reported) fails again
            pass
