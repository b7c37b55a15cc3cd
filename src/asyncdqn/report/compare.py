"""`asyncdqn compare`: several runs, grouped by label, in one figure and one table.

Runs sharing a label (config `label`, else "<algo> <env_id>") are seeds of one
method. For each group the figure shows the greedy evaluation mean (the
`eval` rows of metrics.csv, screens included) against env steps and against wall
time: the mean over runs and the min-max band, on a common grid, from the point
where every run of the group has been evaluated once. A run's curve is a step
function (each evaluation holds until the next one) and holds its last value
after the run stopped, so a run that solved early keeps counting as solved.

The Markdown table has one row per label: runs, solved n/N, median time- and
steps-to-solve over the solved runs (from eval.json), and the final greedy
return: mean ± std over all final-evaluation episodes of the group's runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from asyncdqn.errors import RunDirError
from asyncdqn.report.plotting import read_run
from asyncdqn.rundir.fileio import atomic_write, atomic_write_bytes
from asyncdqn.rundir.layout import CONFIG, EVAL

GRID_POINTS = 200


@dataclass
class RunSummary:
    """What the comparison needs from one run directory."""

    path: Path
    label: str
    solve_score: float | None
    eval_step: np.ndarray
    eval_time: np.ndarray
    eval_mean: np.ndarray
    solved: bool
    time_to_solve_s: float | None
    steps_to_solve: int | None
    final_returns: list[float]


@dataclass
class GroupSummary:
    label: str
    runs: list[RunSummary] = field(default_factory=list)

    @property
    def n_solved(self) -> int:
        return sum(r.solved for r in self.runs)

    def median_time_to_solve(self) -> float | None:
        vals = [r.time_to_solve_s for r in self.runs if r.solved and r.time_to_solve_s is not None]
        return float(np.median(vals)) if vals else None

    def median_steps_to_solve(self) -> float | None:
        vals = [r.steps_to_solve for r in self.runs if r.solved and r.steps_to_solve is not None]
        return float(np.median(vals)) if vals else None

    def final_mean_std(self) -> tuple[float, float] | None:
        returns = [x for r in self.runs for x in r.final_returns]
        if not returns:
            return None
        return float(np.mean(returns)), float(np.std(returns))


def _label(cfg: dict[str, Any], path: Path) -> str:
    label = cfg.get("label")
    if isinstance(label, str) and label.strip():
        return label
    if cfg.get("algo") and cfg.get("env_id"):
        return f"{cfg['algo']} {cfg['env_id']}"
    return path.name


def load_summary(run_dir: str | Path) -> RunSummary:
    """Read one run directory (config.json, metrics.csv, eval.json if the run finished)."""
    path = Path(run_dir)
    try:
        curves = read_run(path)
        cfg = json.loads((path / CONFIG).read_text())
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise RunDirError(f"cannot compare {path}: {exc}") from None
    solved, tts, sts, final = False, None, None, []
    eval_path = path / EVAL
    if eval_path.is_file():
        try:
            ev = json.loads(eval_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"cannot read {eval_path}: {exc}") from None
        solved = bool(ev.get("solved"))
        tts, sts = ev.get("time_to_solve_s"), ev.get("steps_to_solve")
        fe = ev.get("final_eval") or {}
        final = [float(x) for x in fe.get("returns") or []]
        if not final and fe.get("mean") is not None:
            final = [float(fe["mean"])]
    elif curves.eval_mean.size:  # unfinished run: its last evaluation stands in for the final one
        final = [float(curves.eval_mean[-1])]
    return RunSummary(path, _label(cfg, path), curves.solve_score, curves.eval_step.astype(np.float64),
                      curves.eval_time, curves.eval_mean, solved, tts, sts, final)


def group_runs(runs: Sequence[RunSummary]) -> list[GroupSummary]:
    """Groups in order of first appearance."""
    groups: dict[str, GroupSummary] = {}
    for r in runs:
        groups.setdefault(r.label, GroupSummary(r.label)).runs.append(r)
    return list(groups.values())


def step_curve(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """y of the last point with x <= grid (NaN before the first point), held after the last one."""
    if x.size == 0:
        return np.full(grid.shape, np.nan)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    idx = np.searchsorted(x, grid, side="right") - 1
    out = y[np.clip(idx, 0, None)].astype(np.float64)
    out[idx < 0] = np.nan
    return out


def band(group: GroupSummary, axis: str, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, min, max) over the group's runs on `grid`; axis is "step" or "time".

    NaN wherever some run has not been evaluated yet."""
    curves = np.stack([step_curve(r.eval_step if axis == "step" else r.eval_time, r.eval_mean, grid)
                       for r in group.runs])
    # NaN until every run has its first evaluation, so the mean never averages a changing subset.
    return curves.mean(axis=0), curves.min(axis=0), curves.max(axis=0)


def _fmt(v: float | None, spec: str) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def markdown_table(groups: Sequence[GroupSummary]) -> str:
    lines = ["| label | runs | solved | median time-to-solve (s) | median steps-to-solve | final greedy mean ± std |",
             "|---|---:|---:|---:|---:|---:|"]
    for g in groups:
        fin = g.final_mean_std()
        final = "—" if fin is None else f"{fin[0]:.1f} ± {fin[1]:.1f}"
        lines.append(f"| {g.label} | {len(g.runs)} | {g.n_solved}/{len(g.runs)} | "
                     f"{_fmt(g.median_time_to_solve(), '.1f')} | {_fmt(g.median_steps_to_solve(), ',.0f')} | {final} |")
    return "\n".join(lines) + "\n"


def plot_comparison(groups: Sequence[GroupSummary], out: str | Path) -> Path:
    fig = Figure(figsize=(11.0, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(groups))]
    scores = {r.solve_score for g in groups for r in g.runs if r.solve_score is not None}
    for ax, axis, xlabel in ((axes[0], "step", "env steps"), (axes[1], "time", "wall time (s)")):
        xmax = max((float((r.eval_step if axis == "step" else r.eval_time).max(initial=0.0))
                    for g in groups for r in g.runs), default=1.0) or 1.0
        grid = np.linspace(0.0, xmax, GRID_POINTS)
        for g, c in zip(groups, colors, strict=True):
            mean, lo, hi = band(g, axis, grid)
            ax.plot(grid, mean, color=c, label=f"{g.label} (n={len(g.runs)})")
            if len(g.runs) > 1:
                ax.fill_between(grid, lo, hi, color=c, alpha=0.2, linewidth=0)
        for s in sorted(scores):
            ax.axhline(s, color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("greedy evaluation mean return")
        ax.grid(alpha=0.3)
    axes[0].set_title("vs env steps")
    axes[1].set_title("vs wall time")
    axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle("mean over runs, band = min-max across runs")
    fig.tight_layout()
    return atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=90))


def compare(run_dirs: Sequence[str | Path], out_prefix: str | Path) -> tuple[Path, Path, list[GroupSummary]]:
    """Write `<prefix>.png` and `<prefix>.md`; returns (png, md, groups)."""
    if not run_dirs:
        raise RunDirError("compare needs at least one run directory")
    groups = group_runs([load_summary(d) for d in run_dirs])
    prefix = str(out_prefix)
    for ext in (".png", ".md"):
        if prefix.endswith(ext):
            prefix = prefix[: -len(ext)]
    png = plot_comparison(groups, prefix + ".png")
    md = atomic_write_bytes(prefix + ".md", markdown_table(groups).encode())
    return png, md, groups
