"""Learning-curve plots for training runs.

A *run directory* holds ``config.json`` and ``metrics.csv`` (see :func:`read_run`).
:func:`plot_runs` draws one or more runs into a two-panel PNG: return against
environment steps (left) and against wall-clock time (right).

Only the object-oriented matplotlib API is used (``Figure`` + the Agg canvas);
pyplot is never imported, so plotting needs no display, does not touch the
global backend and is safe to call from a background thread.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, MaxNLocator

from asyncdqn.rundir.fileio import atomic_write
from asyncdqn.rundir.layout import CONFIG, CURVE, METRICS
from asyncdqn.rundir.metrics import read_metrics

__all__ = [
    "RunCurves",
    "moving_average",
    "plot_run",
    "plot_runs",
    "read_run",
]

_FIGSIZE = (13.0, 5.0)  # inches
_DPI = 120  # -> 1560 x 600 pixels


@dataclass(frozen=True, eq=False)
class RunCurves:
    """Curves of one run, as parsed from its ``metrics.csv``.

    ``ep_*`` arrays have one entry per finished episode and ``eval_*`` arrays one
    per greedy evaluation, both in file (time) order. Steps are ``int64``, all other
    arrays ``float64``; a missing ``eval_std`` is NaN. ``env_id`` and ``algo`` come
    from ``config.json`` (``None`` when absent). ``eq=False`` because element-wise
    array comparison has no single truth value; instances hash by identity.
    """

    label: str
    solve_score: float | None
    ep_step: np.ndarray
    ep_time: np.ndarray
    ep_return: np.ndarray
    eval_step: np.ndarray
    eval_time: np.ndarray
    eval_mean: np.ndarray
    eval_std: np.ndarray
    env_id: str | None = None
    algo: str | None = None


# --------------------------------------------------------------------------- reading


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(
            f"run directory {str(path.parent)!r} has no {CONFIG} (expected {str(path)!r})"
        )
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ValueError(f"{str(path)!r} must contain a JSON object, got {type(cfg).__name__}")
    return cfg


def _solve_score(cfg: dict[str, Any], path: Path) -> float | None:
    raw = cfg.get("solve_score")
    if raw is None:
        return None
    try:
        score = float(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{str(path)!r}: solve_score must be a number or null, got {raw!r}") from exc
    return score if math.isfinite(score) else None


def read_run(run_dir: str | Path) -> RunCurves:
    """Parse ``<run_dir>/config.json`` and ``<run_dir>/metrics.csv``.

    The label is the config's ``"label"`` when it is a non-empty string, otherwise the
    directory name. Rows whose ``kind`` is neither ``episode`` nor ``eval`` are
    ignored; a malformed *last* row (a write in progress) is skipped.

    Raises:
        FileNotFoundError: ``run_dir``, ``config.json`` or ``metrics.csv`` is missing.
        ValueError: ``config.json`` is not a JSON object, or ``metrics.csv`` lacks the
            expected header columns or has a malformed row before its last line.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {str(run_dir)!r} does not exist or is not a directory")
    cfg_path = run_dir / CONFIG
    cfg = _read_config(cfg_path)
    episodes, evals = read_metrics(run_dir / METRICS)

    label = cfg.get("label")
    if not isinstance(label, str) or not label.strip():
        label = run_dir.resolve().name or str(run_dir)
    env_id = cfg.get("env_id")
    algo = cfg.get("algo")

    ep = np.asarray(episodes, dtype=np.float64).reshape(-1, 3)
    ev = np.asarray(evals, dtype=np.float64).reshape(-1, 4)
    return RunCurves(
        label=label,
        solve_score=_solve_score(cfg, cfg_path),
        ep_step=ep[:, 0].astype(np.int64),
        ep_time=ep[:, 1].copy(),
        ep_return=ep[:, 2].copy(),
        eval_step=ev[:, 0].astype(np.int64),
        eval_time=ev[:, 1].copy(),
        eval_mean=ev[:, 2].copy(),
        eval_std=ev[:, 3].copy(),
        env_id=env_id if isinstance(env_id, str) else None,
        algo=algo if isinstance(algo, str) else None,
    )


# --------------------------------------------------------------------------- maths


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` values, same length as ``x``.

    Element ``i`` is ``mean(x[max(0, i - window + 1) : i + 1])``, so the first
    ``window - 1`` entries average over fewer values. Returns ``float64``.
    """
    window = int(window)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return np.empty(0, dtype=np.float64)
    csum = np.concatenate(([0.0], np.cumsum(x)))
    idx = np.arange(1, n + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


# --------------------------------------------------------------------------- plotting


def _colors(n: int) -> list[Any]:
    cycle = rcParams["axes.prop_cycle"].by_key().get("color") or ["C0"]
    return [c for c, _ in zip(itertools.cycle(cycle), range(n))]


def save_png(fig: Figure, out: Path) -> None:
    """Write `fig` to `out` as a PNG at the plots' resolution, atomically (never a half-written file)."""
    atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=_DPI))


def plot_runs(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    window: int = 100,
    title: str | None = None,
) -> Path:
    """Plot one or more runs into a two-panel PNG at ``out`` and return its path.

    Left panel: return vs environment steps; right panel: return vs wall time (s).
    Per run (one colour each): raw episode returns as a faint thin line, their
    ``window``-episode trailing moving average as a solid line, greedy evaluations
    as markers with ±std error bars joined by a dashed line. A dotted horizontal line
    marks each distinct solve score. Runs without episodes or evals are fine.
    The file is written atomically (temp file in the same directory + ``os.replace``).
    """
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    if len(run_dirs) == 0:
        raise ValueError("plot_runs needs at least one run directory")
    if int(window) < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    out = Path(out)
    runs = [read_run(d) for d in run_dirs]
    colors = _colors(len(runs))

    fig = Figure(figsize=_FIGSIZE, dpi=_DPI)
    FigureCanvasAgg(fig)
    ax_step, ax_time = fig.subplots(1, 2, sharey=True)

    run_handles: list[Line2D] = []
    any_data = False
    for run, color in zip(runs, colors, strict=True):
        for ax, ep_x, ev_x in (
            (ax_step, run.ep_step, run.eval_step),
            (ax_time, run.ep_time, run.eval_time),
        ):
            if run.ep_return.size:
                ax.plot(ep_x, run.ep_return, color=color, lw=0.5, alpha=0.25, zorder=1)
                ax.plot(
                    ep_x,
                    moving_average(run.ep_return, window),
                    color=color,
                    lw=1.8,
                    marker="o" if run.ep_return.size == 1 else None,  # 1 point: no visible line
                    ms=4,
                    zorder=3,
                )
            if run.eval_mean.size:
                ax.errorbar(
                    ev_x,
                    run.eval_mean,
                    yerr=run.eval_std,
                    color=color,
                    fmt="o",
                    ls="--",
                    lw=1.0,
                    ms=4,
                    mec="white",
                    mew=0.6,
                    elinewidth=0.9,
                    capsize=2.5,
                    zorder=4,
                )
        any_data = any_data or bool(run.ep_return.size or run.eval_mean.size)
        n_ep, n_ev = run.ep_return.size, run.eval_mean.size
        run_handles.append(
            Line2D([], [], color=color, lw=2.0, label=f"{run.label} ({n_ep} ep, {n_ev} eval)")
        )

    # Solve-score lines, once per distinct score.
    solve_handles: list[Line2D] = []
    for score in sorted({r.solve_score for r in runs if r.solve_score is not None}):
        for ax in (ax_step, ax_time):
            ax.axhline(score, color="0.25", ls=":", lw=1.3, zorder=2)
        solve_handles.append(Line2D([], [], color="0.25", ls=":", lw=1.3, label=f"solve score {score:g}"))

    env_ids = list(dict.fromkeys(r.env_id for r in runs if r.env_id))
    if title is None:
        title = ", ".join(env_ids) if env_ids else "learning curve"
        if len(runs) == 1 and runs[0].algo:
            title = f"{title} \N{EM DASH} {runs[0].algo}"
    fig.suptitle(title, fontsize=13)

    ax_step.set_title("Return vs environment steps", fontsize=11)
    ax_step.set_xlabel("environment steps")
    ax_step.set_ylabel("episode return")
    # steps are integers: no "200m"
    ax_step.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))
    ax_step.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1.5M
    ax_time.set_title("Return vs wall-clock time", fontsize=11)
    ax_time.set_xlabel("wall time (s)")
    ax_time.tick_params(labelleft=True)
    for ax in (ax_step, ax_time):
        ax.grid(True, alpha=0.3)
        if not any_data:
            ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", va="center",
                    color="0.45", fontsize=12, zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "0.8", "boxstyle": "round"})

    # Left panel: which colour is which run. Right panel: what the line styles mean.
    ax_step.legend(handles=run_handles + solve_handles, loc="lower right", fontsize=8,
                   framealpha=0.85)
    grey = "0.35"
    style_handles = [
        Line2D([], [], color=grey, lw=0.6, alpha=0.5, label="episode return"),
        Line2D([], [], color=grey, lw=1.8, label=f"moving average ({int(window)} ep)"),
        Line2D([], [], color=grey, ls="--", marker="o", ms=4, lw=1.0, label="greedy eval \u00b1 std"),
    ]
    ax_time.legend(handles=style_handles, loc="lower right", fontsize=8, framealpha=0.85)

    fig.tight_layout()
    save_png(fig, out)
    return out


def plot_run(run_dir: str | Path, window: int = 100) -> Path:
    """Plot a single run into ``<run_dir>/learning_curve.png`` and return that path."""
    return plot_runs([run_dir], Path(run_dir) / CURVE, window=window)
