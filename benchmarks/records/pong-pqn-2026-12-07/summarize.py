"""Summarize Pong runs of this record against the earlier preset's run (pong-2026-12-01).

    python benchmarks/records/pong-pqn-2026-12-07/summarize.py OUT_DIR RUN_DIR [RUN_DIR ...]

Reads each run's metrics.csv (its evaluations: agent steps, wall time, mean over whole games) and
eval.json (the final evaluation), and the earlier run's table from ../pong-2026-12-01/pong.md.
Writes OUT_DIR/summary.md, OUT_DIR/summary.json and OUT_DIR/curve.png (evaluation mean against
wall time, every run beside the earlier preset's).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from asyncdqn.report.plotting import save_png

HERE = Path(__file__).resolve().parent
EARLIER = HERE.parent / "pong-2026-12-01" / "pong.md"
ROW = re.compile(r"^\| ([\d,]+) \| [\d,]+ \| ([\d,]+) \| (-?[\d.]+) ± ([\d.]+) \((\d+)\) \|$")


def evaluations(run: Path) -> list[dict[str, float]]:
    """Every evaluation of a run, from its metrics.csv."""
    with open(run / "metrics.csv", newline="") as fh:
        return [{"step": int(r["step"]), "wall_s": float(r["wall_time"]), "mean": float(r["eval_mean"]),
                 "std": float(r["eval_std"]), "games": int(r["eval_episodes"])}
                for r in csv.DictReader(fh) if r["kind"] == "eval"]


def earlier() -> list[dict[str, float]]:
    """The earlier preset's evaluations (pong-2026-12-01/pong.md's table)."""
    rows = []
    for line in EARLIER.read_text().splitlines():
        if m := ROW.match(line):
            step, wall, mean, std, games = m.groups()
            rows.append({"step": int(step.replace(",", "")), "wall_s": float(wall.replace(",", "")),
                         "mean": float(mean), "std": float(std), "games": int(games)})
    return rows


# Options of the later runs that the preset's runs left at these values: a run that sets another
# is labelled with it.
PRESET = {"final_epsilons": [0.01], "precision": "fp32", "lambda_values": "learn"}


def _shown(value: object) -> str:
    return " ".join(f"{v:g}" for v in value) if isinstance(value, list) else str(value)


def first_at(evals: list[dict[str, float]], score: float) -> dict[str, float] | None:
    return next((e for e in evals if e["mean"] >= score), None)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    out, runs = Path(argv[0]), [Path(a) for a in argv[1:]]
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"earlier_preset": earlier()}
    lines = ["# Pong: the PQN ingredients against the earlier preset", ""]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    old = summary["earlier_preset"]
    assert isinstance(old, list)
    ax.plot([e["wall_s"] / 60 for e in old], [e["mean"] for e in old], color="0.6", marker=".",
            label="earlier preset (pong-2026-12-01, 5 games)")
    for run in runs:
        cfg = json.loads((run / "config.json").read_text())
        done = run / "eval.json"  # written when the run ends
        report = json.loads(done.read_text()) if done.exists() else {"stop_reason": "still running"}
        evals = evaluations(run)
        kwargs = cfg.get("env_kwargs") or {}
        name = f"seed {cfg['seed']}" + "".join(f", {k} {v:g}" for k, v in kwargs.items())
        name += "".join(f", {k} {_shown(cfg[k])}" for k, v in PRESET.items() if k in cfg and cfg[k] != v)
        summary[name] = {"evaluations": evals, "final_eval": report.get("final_eval"),
                         "total_steps": report.get("total_steps"), "wall_time_s": report.get("wall_time_s")}
        ax.plot([e["wall_s"] / 60 for e in evals], [e["mean"] for e in evals], marker=".",
                label=f"{name} (10 games)")
        fe = report.get("final_eval") or {}
        lines += [f"## {name}: {report.get('total_steps', 0):,} agent steps in {report.get('wall_time_s', 0):,.0f} s "
                  f"of training ({report.get('stop_reason')})", ""]
        for score in (0.0, 18.0, 20.0):
            hit = first_at(evals, score)
            lines.append(f"- evaluation mean first >= {score:g}: " + (
                f"{hit['wall_s'] / 60:.1f} min, {int(hit['step']):,} agent steps" if hit else "not reached"))
        if fe:
            lines.append(f"- final weights: {fe.get('mean', float('nan')):.1f} ± {fe.get('std', float('nan')):.1f} "
                         f"over {fe.get('episodes')} games")
        lines += ["", "| agent steps | wall min | mean ± std (games) |", "|---|---|---|"]
        lines += [f"| {int(e['step']):,} | {e['wall_s'] / 60:.1f} | {e['mean']:.1f} ± {e['std']:.1f} "
                  f"({int(e['games'])}) |" for e in evals]
        lines.append("")
    ax.axhline(18, color="k", lw=0.5, ls="--")
    ax.set_xlabel("wall time, minutes (2-core VM)")
    ax.set_ylabel("evaluation mean, whole games")
    ax.set_title("ALE/Pong-v5 (sticky actions 0.25 unless a run sets repeat_action_probability)")
    ax.legend(loc="lower right", fontsize=8)
    save_png(fig, out / "curve.png")
    plt.close(fig)
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
