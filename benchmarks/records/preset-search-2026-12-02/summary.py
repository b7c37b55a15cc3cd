"""Table of env steps to solve per variant (runs/<variant>/seed*.json) -> summary.md. Usage: python summary.py"""
import json
import statistics
from pathlib import Path

here = Path(__file__).parent
rows = []
for d in sorted((here / "runs").iterdir()):
    recs = sorted((json.loads(f.read_text()) for f in d.glob("seed*.json")), key=lambda r: r["seed"])
    steps = [r["steps_to_solve"] for r in recs]
    solved = [s for s in steps if s is not None]
    med = statistics.median([s if s is not None else 2_500_000 for s in steps])
    rows.append((med, d.name, " ".join(recs[0]["args"]) or "(env preset)", [r["seed"] for r in recs], steps, len(solved)))
lines = ["| variant | options over the env preset | seeds | env steps to solve (k) | solved | median (k) |",
         "|---|---|---|---|---|---|"]
for med, name, args, seeds, steps, n in sorted(rows):
    fmt = ", ".join("-" if s is None else f"{s / 1000:.0f}" for s in steps)
    lines.append(f"| {name} | `{args}` | {seeds[0]}-{seeds[-1]} | {fmt} | {n}/{len(steps)} | {med / 1000:.0f} |")
(here / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
