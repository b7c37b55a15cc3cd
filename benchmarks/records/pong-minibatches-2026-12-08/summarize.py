"""Summarize this record's Pong runs beside the 2026-12-07 preset's seeds 100 and 101.

    python benchmarks/records/pong-minibatches-2026-12-08/summarize.py OUT_DIR NAME=RUN_DIR [NAME=RUN_DIR ...]

Reads each run's metrics.csv (its evaluations) and eval.json (the final evaluation), and the
earlier runs' evaluations from ../pong-pqn-2026-12-07/summary.json. Copies each run's config.json
and eval.json to OUT_DIR/runs/NAME/, and writes OUT_DIR/summary.md, summary.json and curve.png
(evaluation mean against wall time).
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from asyncdqn.report.plotting import save_png

HERE = Path(__file__).resolve().parent
BEFORE = HERE.parent / "pong-pqn-2026-12-07" / "summary.json"
SHOWN_BEFORE = ("seed 100", "seed 101")  # the 2026-12-07 preset's two plain runs


def evaluations(run: Path) -> list[dict[str, float]]:
    with open(run / "metrics.csv", newline="") as fh:
        return [{"step": int(r["step"]), "wall_s": float(r["wall_time"]), "mean": float(r["eval_mean"]),
                 "std": float(r["eval_std"]), "games": int(r["eval_episodes"])}
                for r in csv.DictReader(fh) if r["kind"] == "eval"]


def first_at(evals: list[dict[str, float]], score: float) -> dict[str, float] | None:
    return next((e for e in evals if e["mean"] >= score), None)


def at_minutes(evals: list[dict[str, float]], minutes: float) -> dict[str, float] | None:
    """The last evaluation finished within `minutes` of wall time."""
    done = [e for e in evals if e["wall_s"] <= minutes * 60]
    return done[-1] if done else None


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not all("=" in a for a in argv[1:]):
        print(__doc__)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    before = json.loads(BEFORE.read_text())
    summary: dict[str, object] = {}
    lines = ["# Pong: 8 minibatches of 32 rows against the 2026-12-07 preset's 2 of 128", ""]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([e["wall_s"] / 60 for e in before["earlier_preset"]], [e["mean"] for e in before["earlier_preset"]],
            color="0.75", marker=".", label="preset before 2026-12-07 (seed 0, 5 greedy games)")
    for name in SHOWN_BEFORE:
        evals = before[name]["evaluations"]
        ax.plot([e["wall_s"] / 60 for e in evals], [e["mean"] for e in evals], marker=".", ls=":",
                label=f"2026-12-07 preset, 2 minibatches, {name}")
    for arg in argv[1:]:
        name, run_dir = arg.split("=", 1)
        run = Path(run_dir)
        cfg = json.loads((run / "config.json").read_text())
        done = run / "eval.json"
        report = json.loads(done.read_text()) if done.exists() else {"stop_reason": "still running"}
        evals = evaluations(run)
        if done.exists():
            dest = out / "runs" / name
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(run / "config.json", dest / "config.json")
            shutil.copy(done, dest / "eval.json")
        summary[name] = {"seed": cfg["seed"], "minibatches": cfg["minibatches"], "evaluations": evals,
                         "final_eval": report.get("final_eval"), "total_steps": report.get("total_steps"),
                         "wall_time_s": report.get("wall_time_s"), "stop_reason": report.get("stop_reason")}
        ax.plot([e["wall_s"] / 60 for e in evals], [e["mean"] for e in evals], marker=".", lw=2,
                label=f"{cfg['minibatches']} minibatches, {name}")
        fe = report.get("final_eval") or {}
        lines += [f"## {name} (seed {cfg['seed']}, {cfg['minibatches']} minibatches): "
                  f"{report.get('total_steps') or 0:,} agent steps in {report.get('wall_time_s') or 0:,.0f} s "
                  f"of training ({report.get('stop_reason')})", ""]
        for score in (0.0, 18.0, 20.0):
            hit = first_at(evals, score)
            lines.append(f"- evaluation mean first >= {score:g}: " + (
                f"{hit['wall_s'] / 60:.1f} min, {int(hit['step']):,} agent steps" if hit else "not reached"))
        if fe:
            lines.append(f"- final weights: {fe.get('mean', float('nan')):.1f} ± {fe.get('std', float('nan')):.1f} "
                         f"over {fe.get('episodes')} games")
        lines += ["", "| agent steps | wall min | mean ± std (games) | 2026-12-07 preset seed 100 / 101, same steps |",
                  "|---|---|---|---|"]
        for e in evals:
            same = [next((b for b in before[n]["evaluations"] if abs(b["step"] - e["step"]) < 5000), None)
                    for n in SHOWN_BEFORE]
            shown = " / ".join(f"{b['mean']:.1f}" if b else "-" for b in same)
            lines.append(f"| {int(e['step']):,} | {e['wall_s'] / 60:.1f} | {e['mean']:.1f} ± {e['std']:.1f} "
                         f"({int(e['games'])}) | {shown} |")
        lines.append("")
    ax.axhline(18, color="k", lw=0.5, ls="--")
    ax.set_xlabel("wall time, minutes (2-core VM)")
    ax.set_ylabel("evaluation mean, 10 whole games at ε 0.05")
    ax.set_title("ALE/Pong-v5 (sticky actions 0.25)")
    ax.legend(loc="lower right", fontsize=8)
    save_png(fig, out / "curve.png")
    plt.close(fig)
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
