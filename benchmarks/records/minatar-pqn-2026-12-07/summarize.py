"""Summarise probes.sh's runs: each run's evaluation means every 1M frames, its best periodic
evaluation and its final greedy score (20 fresh games of the final weights); writes summary.md
beside this script and copies each run's config.json and eval.json into runs/<name>/ (then
bundle_records.py folds them).

    python benchmarks/records/minatar-pqn-2026-12-07/summarize.py RUNS_ROOT"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(root: Path) -> None:
    lines = ["| run | 1M | 2M | 3M | 4M | best periodic | final at 5M (20 games) |", "|---|---|---|---|---|---|---|"]
    for run in sorted(p for p in root.iterdir() if (p / "eval.json").exists()):
        with open(run / "metrics.csv", newline="") as fh:
            evals = {int(r["step"]): float(r["eval_mean"]) for r in csv.DictReader(fh) if r["kind"] == "eval"}
        marks = [next((v for s, v in sorted(evals.items()) if s >= m * 1_000_000), float("nan")) for m in range(1, 5)]
        final = json.loads((run / "eval.json").read_text())["final_eval"]["mean"]
        lines.append(f"| {run.name} | " + " | ".join(f"{v:.1f}" for v in marks)
                     + f" | {max(evals.values()):.1f} | **{final:.1f}** |")
        out = HERE / "runs" / run.name
        out.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "eval.json"):
            shutil.copy(run / name, out / name)
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
