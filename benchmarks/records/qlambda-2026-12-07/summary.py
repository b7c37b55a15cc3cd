"""The record's table: env steps to solve per variant and seed, from search.py's seed JSONs.

Usage: python summary.py [OUT_ROOT]   (default: this record's runs.json, where bundle_records.py folded
runs/<variant>/seed<S>.json)
"""
import json, statistics, sys
from pathlib import Path

here = Path(__file__).parent
if len(sys.argv) > 1:
    recs = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*/seed*.json"))]
else:
    bundle = json.loads((here / "runs.json").read_text())
    recs = [v for k, v in bundle.items() if k.startswith("runs/") and k.count("/") == 2 and "/seed" in k]
by: dict[str, list[dict]] = {}
probes = sorted((r for r in recs if "steps_to_solve" not in r), key=lambda r: (r["seed"], r["variant"]))
for r in recs:
    if "steps_to_solve" in r:  # LunarLander (search.py); the MinAtar probes (minatar.py) are listed below
        by.setdefault(r["variant"], []).append(r)
rows = []
for name, rs in by.items():
    rs.sort(key=lambda r: r["seed"])
    steps = [r["steps_to_solve"] for r in rs]
    solved = [s for s in steps if s is not None]
    # an unsolved run counts as more than any budget (2.5M) for the median
    median = statistics.median([s if s is not None else 10**9 for s in steps])
    rows.append((median, name, rs, steps, len(solved)))
print("| variant | options over the preset | seeds | env steps to solve (k) | median (k) | solved |")
print("|---|---|---|---|---|---|")
for median, name, rs, steps, n_solved in sorted(rows, key=lambda x: (x[0], x[1])):
    opts = " ".join(rs[0]["args"]) or "-"
    seeds = ",".join(str(r["seed"]) for r in rs)
    cells = ", ".join("-" if s is None else str(round(s / 1000)) for s in steps)
    med = "-" if median >= 10**9 else str(round(median / 1000))
    print(f"| {name} | `{opts}` | {seeds} | {cells} | {med} | {n_solved}/{len(steps)} |")

if probes:
    print()
    print("| MinAtar Breakout variant | options over the preset | seed | greedy mean (20 episodes) at 100k ... 1M steps | final |")
    print("|---|---|---|---|---|")
    for r in probes:
        curve = " ".join(f"{e[1]:g}" for e in r["evals"])
        final = "-" if r["final_eval_mean"] is None else f"{r['final_eval_mean']:g}"
        print(f"| {r['variant']} | `{' '.join(r['args']) or '-'}` | {r['seed']} | {curve} | {final} |")
