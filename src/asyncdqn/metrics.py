"""metrics.csv: one row per finished training episode and per greedy evaluation."""

from __future__ import annotations

import csv
from pathlib import Path

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
            self._w.writerow(COLUMNS)

    def episode(self, step: int, wall_time: float, worker: int, ret: float, length: int, eps: float) -> None:
        self._w.writerow(["episode", step, f"{wall_time:.3f}", worker, f"{ret:.4f}", length, f"{eps:.4f}", "", "", ""])

    def evaluation(self, step: int, wall_time: float, mean: float, std: float, episodes: int) -> None:
        self._w.writerow(["eval", step, f"{wall_time:.3f}", "", "", "", "", f"{mean:.4f}", f"{std:.4f}", episodes])

    def close(self) -> None:
        self._f.close()
