"""Summarize this record's Breakout run(s) beside the earlier preset's 25-minute check.

    python benchmarks/records/breakout-pqn-2026-12-08/summarize.py OUT_DIR NAME=RUN_DIR [NAME=RUN_DIR ...]

Reads each run's metrics.csv (its evaluations) and eval.json (the final evaluation; absent while a
run is going), copies config.json and eval.json to OUT_DIR/runs/NAME/, and writes
OUT_DIR/summary.md, summary.json and curve.png (evaluation mean against wall time). The earlier
check (../breakout-2026-12-01, 5 greedy games an evaluation) kept no per-evaluation wall times: its
evaluations (docs/pixels.md) are placed at agent steps / its average 1,039 agent steps/s.
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

EARLIER_RATE = 1039.0  # agent steps/s of the 2026-12-01 check, evaluations included
EARLIER = [(250_000, 0.0), (500_000, 0.0), (750_000, 0.0), (1_000_000, 0.0), (1_250_000, 0.2), (1_500_000, 2.4)]


def evaluations(run: Path) -> list[dict[str, float]]:
    with open(run / "metrics.csv", newline="") as fh:
        return [{"step": int(r["step"]), "wall_s": float(r["wall_time"]), "mean": float(r["eval_mean"]),
                 "std": float(r["eval_std"]), "games": int(r["eval_episodes"])}
                for r in csv.DictReader(fh) if r["kind"] == "eval"]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not all("=" in a for a in argv[1:]):
        print(__doc__)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"earlier_check": [{"step": s, "mean": m} for s, m in EARLIER]}
    lines = ["# Breakout with the Atari preset of 2026-12-08", ""]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([s / EARLIER_RATE / 60 for s, _ in EARLIER], [m for _, m in EARLIER], color="0.6", marker=".",
            label="preset before 2026-12-07 (seed 0, 5 greedy games; wall time from its mean rate)")
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
        summary[name] = {"seed": cfg["seed"], "evaluations": evals, "final_eval": report.get("final_eval"),
                         "total_steps": report.get("total_steps"), "wall_time_s": report.get("wall_time_s"),
                         "stop_reason": report.get("stop_reason")}
        ax.plot([e["wall_s"] / 60 for e in evals], [e["mean"] for e in evals], marker=".", lw=2,
                label=f"preset of 2026-12-08, {name} (10 games, ε {cfg['eval_epsilon']:g})")
        lines += [f"## {name} (seed {cfg['seed']}): {report.get('total_steps') or 0:,} agent steps in "
                  f"{report.get('wall_time_s') or 0:,.0f} s of training ({report.get('stop_reason')})", ""]
        hit = next((e for e in evals if e["mean"] >= 30.0), None)
        lines.append("- evaluation mean first >= 30: " + (
            f"{hit['wall_s'] / 60:.1f} min, {int(hit['step']):,} agent steps" if hit else "not reached"))
        fe = report.get("final_eval") or {}
        if fe:
            lines.append(f"- final weights: {fe['mean']:.1f} ± {fe['std']:.1f} over {fe['episodes']} games")
        lines += ["", "| agent steps | wall min | mean ± std (games) |", "|---|---|---|"]
        lines += [f"| {int(e['step']):,} | {e['wall_s'] / 60:.1f} | {e['mean']:.1f} ± {e['std']:.1f} "
                  f"({int(e['games'])}) |" for e in evals]
        lines.append("")
    ax.axhline(30, color="k", lw=0.5, ls="--")
    ax.set_xlabel("wall time, minutes (2-core VM)")
    ax.set_ylabel("evaluation mean, whole games")
    ax.set_title("ALE/Breakout-v5 (sticky actions 0.25)")
    ax.legend(loc="upper left", fontsize=8)
    save_png(fig, out / "curve.png")
    plt.close(fig)
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
