"""Summarise the MinAtar runs of run.sh: each run's final greedy evaluation (20 fresh games of the
final weights, eval.json), its best periodic evaluation and its wall time, per game the median over
seeds against the MinAtar paper's replay DQN at 5M frames, and for the games run on both backends
Ray against process (median score and median wall time). Writes summary.json and summary.md beside
this script and copies each run's config.json and eval.json into runs/<name>/ (then
bundle_records.py folds them).

    python benchmarks/records/minatar-2026-12-07/summarize.py RUNS_ROOT"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Young & Tian 2019 (MinAtar), DQN with experience replay and a target network, at 5M frames.
PAPER_DQN = {"Asterix": 17, "Breakout": 10, "Freeway": 50, "Seaquest": 20, "SpaceInvaders": 43}
GAMES = {g.lower(): g for g in PAPER_DQN}


def load(root: Path) -> list[dict]:
    runs = []
    for run in sorted(p for p in root.iterdir() if (p / "eval.json").exists()):
        ev = json.loads((run / "eval.json").read_text())
        cfg = json.loads((run / "config.json").read_text())
        wall = run / "wall_seconds.txt"
        runs.append({"name": run.name, "game": GAMES[run.name.split("-")[0]], "seed": cfg["seed"],
                     "backend": cfg["backend"], "steps": ev["total_steps"], "stop": ev["stop_reason"],
                     "final": ev["final_eval"]["mean"], "final_std": ev["final_eval"]["std"],
                     "best": ev["best_eval"]["mean"], "train_s": ev["wall_time_s"],
                     "wall_s": float(wall.read_text()) if wall.exists() else None})
        dst = HERE / "runs" / run.name
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "eval.json"):
            shutil.copy(run / name, dst / name)
    return runs


def main(root: Path) -> None:
    runs = load(root)
    lines = ["| game | seed | backend | env steps | final greedy (20 games) | best periodic | training s "
             "| command wall s |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: (r["game"], r["seed"], r["backend"])):
        wall = f"{r['wall_s']:.0f}" if r["wall_s"] is not None else "?"
        lines.append(f"| {r['game']} | {r['seed']} | {r['backend']} | {r['steps']:,} | {r['final']:.2f} ± "
                     f"{r['final_std']:.2f} | {r['best']:.2f} | {r['train_s']:.0f} | {wall} |")
    games: dict[str, dict] = {}
    for game, paper in PAPER_DQN.items():
        proc = [r for r in runs if r["game"] == game and r["backend"] == "process"]
        if not proc:
            continue
        med = statistics.median(r["final"] for r in proc)
        games[game] = {"seeds": len(proc), "median_final": med, "paper_dqn": paper, "ratio": med / paper,
                       "finals": [r["final"] for r in proc]}
        ray = [r for r in runs if r["game"] == game and r["backend"] == "ray"]
        if ray:
            rmed = statistics.median(r["final"] for r in ray)
            pw = statistics.median(r["wall_s"] for r in proc if r["wall_s"] is not None)
            rw = statistics.median(r["wall_s"] for r in ray if r["wall_s"] is not None)
            games[game]["ray"] = {"seeds": len(ray), "median_final": rmed, "finals": [r["final"] for r in ray],
                                  "score_ratio": rmed / med, "median_wall_s": rw, "process_median_wall_s": pw,
                                  "wall_ratio": rw / pw}
    lines += ["", "| game | seeds | median final (process) | MinAtar DQN @5M | ratio | ray median final | "
              "ray / process score | ray / process wall |", "|---|---|---|---|---|---|---|---|"]
    for game, g in games.items():
        ray = g.get("ray")
        extra = (f"{ray['median_final']:.2f} | {ray['score_ratio']:.2f} | {ray['wall_ratio']:.2f}" if ray
                 else " | | ")
        lines.append(f"| {game} | {g['seeds']} | {g['median_final']:.2f} | {g['paper_dqn']} | "
                     f"{g['ratio']:.2f} | {extra} |")
    if len(games) == len(PAPER_DQN):
        ratio = statistics.median(g["ratio"] for g in games.values())
        lines.append(f"\nMedian over the five games of (median final / MinAtar DQN): {ratio:.2f}")
    (HERE / "summary.json").write_text(json.dumps({"runs": runs, "games": games}, indent=1) + "\n")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
