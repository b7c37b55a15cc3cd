"""Summarise the LayerNorm probes: each run's greedy evaluations (metrics.csv eval rows) and final
evaluation (eval.json) into summary.json and a Markdown table on stdout. Copies each run's
config.json and eval.json into runs/<name>/ beside this script (then bundle_records.py folds them).

    python benchmarks/records/layernorm-2026-12-07/summarize.py /tmp/i27b/probes"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def evals(run: Path) -> list[tuple[int, float]]:
    """(step rounded to 10k, mean) of every greedy evaluation in the run's metrics.csv."""
    with (run / "metrics.csv").open() as f:
        rows = list(csv.reader(f))
    header = rows[0]
    step_i, mean_i = header.index("step"), header.index("eval_mean")
    # the last evaluation runs at the stop (a few steps past the budget): rounded to 10k steps
    return [(round(int(r[step_i]), -4), float(r[mean_i])) for r in rows[1:] if r[0] == "eval" and r[mean_i]]


def main(root: Path) -> None:
    summary = {}
    for run in sorted(p for p in root.iterdir() if (p / "eval.json").exists()):
        ev = json.loads((run / "eval.json").read_text())
        cfg = json.loads((run / "config.json").read_text())
        summary[run.name] = {"layer_norm": cfg["layer_norm"], "seed": cfg["seed"], "evals": evals(run),
                             "final": ev.get("final_eval", {}).get("mean"),
                             "wall_s": ev.get("wall_time_s"), "steps": ev.get("total_steps")}
        dst = HERE / "runs" / run.name
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "eval.json"):
            shutil.copy(run / name, dst / name)
    (HERE / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    steps = sorted({s for r in summary.values() for s, _ in r["evals"]})
    print("| run | " + " | ".join(f"{s // 1000}k" for s in steps) + " | final (20 games) | wall s |")
    print("|---|" + "---|" * (len(steps) + 2))
    for name, r in summary.items():
        by_step = dict(r["evals"])
        cells = [f"{by_step[s]:.1f}" if s in by_step else "" for s in steps]
        wall = f"{r['wall_s']:.0f}" if isinstance(r["wall_s"], (int, float)) else "?"
        print(f"| {name} | " + " | ".join(cells) + f" | {r['final']:.1f} | {wall} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
