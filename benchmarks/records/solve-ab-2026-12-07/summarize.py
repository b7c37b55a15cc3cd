"""The A/B table of this record from its runs.json: per variant, every seed's time and steps to
solve, steps/s and the returned policy's mean over 100 fresh episodes, and the medians.

    python benchmarks/records/solve-ab-2026-12-07/summarize.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    runs = json.loads((HERE / "runs.json").read_text())
    print("| variant | solved | seconds to solve, seeds 50-54 | median s | median env steps | median steps/s | "
          "returned policy, mean of the 5 |")
    print("|---|---|---|---|---|---|---|")
    for variant in ("old", "new-target", "new"):
        rows = [runs[k] for k in sorted(runs) if k.startswith(f"{variant}/asyncdqn-seed")]
        secs = [r["time_to_solve_s"] for r in rows if r["solved"]]
        print(f"| {variant} | {len(secs)}/{len(rows)} | {', '.join(f'{s:.1f}' for s in secs)} | "
              f"{statistics.median(secs):.1f} | {statistics.median(r['steps_to_solve'] for r in rows):,.0f} | "
              f"{statistics.median(r['steps_per_second'] for r in rows):,.0f} | "
              f"{statistics.mean(r['final_eval']['mean'] for r in rows):.1f} |")


if __name__ == "__main__":
    main()
