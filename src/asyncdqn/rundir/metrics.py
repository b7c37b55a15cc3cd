"""metrics.csv: one row per finished training episode and per greedy evaluation.

The one place that knows its columns: written here (`MetricsWriter`), read here
(`read_metrics`, for plots and comparisons), cut back here (`truncate_metrics`, on resume).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from asyncdqn.errors import RunDirError
from asyncdqn.rundir.fileio import atomic_write_bytes
from asyncdqn.rundir.layout import METRICS

# The columns every reader needs (plots, comparisons), in the order the writer puts them.
METRICS_COLUMNS: tuple[str, ...] = (
    "kind",
    "step",
    "wall_time",
    "worker",
    "episode_return",
    "episode_length",
    "epsilon",
    "eval_mean",
    "eval_std",
)

# The plotted columns, plus how many episodes each evaluation played.
COLUMNS = (*METRICS_COLUMNS, "eval_episodes")


class MetricsWriter:
    """Appends rows (line-buffered, so a crash loses at most the current line)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = open(self.path, "a", newline="", buffering=1)  # noqa: SIM115 (open for the writer's life)
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


def _float_or_nan(s: str) -> float:
    return float(s) if s.strip() else math.nan


def read_metrics(path: Path) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float, float]]]:
    """Return (episode rows, eval rows) as lists of tuples."""
    if not path.is_file():
        raise FileNotFoundError(
            f"run directory {str(path.parent)!r} has no {METRICS} (expected {str(path)!r})"
        )
    episodes: list[tuple[float, float, float]] = []
    evals: list[tuple[float, float, float, float]] = []
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            # A zero-byte file: the trainer created it but has not flushed the
            # header yet. Treat it like a header-only file (no data yet).
            return episodes, evals
        header = [h.strip() for h in header]
        missing = [c for c in METRICS_COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"{str(path)!r} has an unexpected header {','.join(header)!r}: missing column(s) "
                f"{', '.join(missing)}; expected {','.join(METRICS_COLUMNS)!r}"
            )
        i_kind, i_step, i_time, i_ret, i_mean, i_std = (
            header.index(c)
            for c in ("kind", "step", "wall_time", "episode_return", "eval_mean", "eval_std")
        )
        ncols = max(i_kind, i_step, i_time, i_ret, i_mean, i_std) + 1
        pending_error: str | None = None  # a bad row is tolerated only as the last row
        for row in reader:
            if not row:
                continue
            if pending_error is not None:
                raise ValueError(pending_error)
            kind = row[i_kind] if len(row) > i_kind else ""
            try:
                if len(row) < ncols:
                    raise ValueError(f"expected {len(header)} fields, got {len(row)}")
                if kind == "episode":
                    episodes.append((float(row[i_step]), float(row[i_time]), float(row[i_ret])))
                elif kind == "eval":
                    evals.append(
                        (
                            float(row[i_step]),
                            float(row[i_time]),
                            float(row[i_mean]),
                            _float_or_nan(row[i_std]),
                        )
                    )
                # Other kinds are ignored so the log format can grow new row types.
            except ValueError as exc:
                # The final line may be half-written if the trainer is still running
                # or crashed mid-write; anything earlier is a genuinely corrupt file.
                pending_error = f"{str(path)!r}, line {reader.line_num}: malformed {kind!r} row {row!r}: {exc}"
    return episodes, evals


def truncate_metrics(path: Path, last_step: int) -> int:
    """Drop metrics rows logged after `last_step` (training a resume discards) and torn lines.

    Returns the number of rows dropped. The header stays; the file is replaced atomically.
    """
    try:
        with open(path, newline="") as f:
            text = f.read()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return 0
    header, body = rows[0], rows[1:]
    keep, width = [], len(header)
    for r in body:
        try:
            ok = len(r) == width and int(r[1]) <= last_step
        except ValueError:
            ok = False
        if ok:
            keep.append(r)
    dropped = len(body) - len(keep)
    if dropped or not text.endswith("\n"):
        out = io.StringIO(newline="")
        w = csv.writer(out)
        w.writerow(header)
        w.writerows(keep)
        try:
            atomic_write_bytes(path, out.getvalue().encode())
        except OSError as exc:
            raise RunDirError(f"cannot rewrite {path}: {exc.strerror}") from None
    return dropped
