"""Summarise the runs of probes.sh and fresh.sh (one RUNS_ROOT): each run's evaluation means every
1M frames, its best periodic evaluation and its final greedy score (20 fresh games of the final
weights); per game, the median over the fresh seeds (10 and up, process backend) against the MinAtar
paper's replay DQN at 5M frames and against the earlier preset on the same seeds
(../minatar-2026-12-07/summary.json); Ray against process where both ran. Writes summary.md and
summary.json beside this script and copies each run's config.json and eval.json into runs/<name>/
(then bundle_records.py folds them).

    python benchmarks/records/minatar-pqn-2026-12-07/summarize.py RUNS_ROOT"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EARLIER = HERE.parent / "minatar-2026-12-07" / "summary.json"  # the LayerNorm n-step preset, seeds 10-12
# Young & Tian 2019 (MinAtar), DQN with experience replay and a target network, at 5M frames.
PAPER_DQN = {"Asterix": 17, "Breakout": 10, "Freeway": 50, "Seaquest": 20, "SpaceInvaders": 43}
GAMES = {g.lower(): g for g in PAPER_DQN}
FRESH = 10  # seeds from here on were never tuned on


def load(root: Path) -> list[dict]:
    runs = []
    for run in sorted(p for p in root.iterdir() if (p / "eval.json").exists()):
        with open(run / "metrics.csv", newline="") as fh:
            evals = sorted((int(r["step"]), float(r["eval_mean"])) for r in csv.DictReader(fh) if r["kind"] == "eval")
        ev = json.loads((run / "eval.json").read_text())
        game, seed, variant = run.name.split("-")
        runs.append({"name": run.name, "game": GAMES[game], "seed": int(seed[1:]), "variant": variant,
                     "marks": [next((v for s, v in evals if s >= m * 1_000_000), None) for m in range(1, 5)],
                     "best": max(v for _, v in evals), "final": ev["final_eval"]["mean"],
                     "final_std": ev["final_eval"]["std"], "steps": ev["total_steps"], "train_s": ev["wall_time_s"]})
        out = HERE / "runs" / run.name
        out.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "eval.json"):
            shutil.copy(run / name, out / name)
    return runs


def fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def main(root: Path) -> None:
    runs = load(root)
    lines = ["| run | 1M | 2M | 3M | 4M | best periodic | final at 5M (20 games) | training s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['name']} | " + " | ".join(fmt(v) for v in r["marks"])
                     + f" | {r['best']:.1f} | **{r['final']:.1f}** ± {r['final_std']:.1f} | {r['train_s']:.0f} |")
    earlier = json.loads(EARLIER.read_text())["games"] if EARLIER.exists() else {}
    games: dict[str, dict] = {}
    for game, paper in PAPER_DQN.items():
        fresh = [r for r in runs if r["game"] == game and r["seed"] >= FRESH and r["variant"] == "process"]
        if not fresh:
            continue
        med = statistics.median(r["final"] for r in fresh)
        g = games[game] = {"seeds": [r["seed"] for r in fresh], "finals": [r["final"] for r in fresh],
                           "median_final": med, "paper_dqn": paper, "ratio": med / paper}
        if game in earlier:
            g["earlier_preset_finals"] = earlier[game]["finals"]
            g["earlier_preset_median"] = earlier[game]["median_final"]
        ray = [r for r in runs if r["game"] == game and r["seed"] >= FRESH and r["variant"] == "ray"]
        if ray:
            rmed = statistics.median(r["final"] for r in ray)
            g["ray"] = {"finals": [r["final"] for r in ray], "median_final": rmed, "score_ratio": rmed / med,
                        "train_s_ratio": statistics.median(r["train_s"] for r in ray)
                        / statistics.median(r["train_s"] for r in fresh)}
    if games:
        lines += ["", "| game | fresh seeds' finals | median | MinAtar DQN @5M | ratio | earlier preset (same seeds) |",
                  "|---|---|---|---|---|---|"]
        for game, g in games.items():
            prev = (", ".join(f"{v:.1f}" for v in g["earlier_preset_finals"]) + f" (median {g['earlier_preset_median']:.1f})"
                    if "earlier_preset_finals" in g else "")
            lines.append(f"| {game} | {', '.join(f'{v:.1f}' for v in g['finals'])} | **{g['median_final']:.1f}** | "
                         f"{g['paper_dqn']} | {g['ratio']:.2f} | {prev} |")
        if len(games) == len(PAPER_DQN):
            ratio = statistics.median(g["ratio"] for g in games.values())
            worst = min(games, key=lambda k: games[k]["ratio"])
            lines.append(f"\nMedian over the five games of (median final / MinAtar DQN): **{ratio:.2f}**; "
                         f"lowest: {worst} {games[worst]['ratio']:.2f}")
        ray_games = {k: g["ray"] for k, g in games.items() if "ray" in g}
        if ray_games:
            lines += ["", "| game | ray finals | ray median | ray / process score | ray / process training s |",
                      "|---|---|---|---|---|"]
            for game, r in ray_games.items():
                lines.append(f"| {game} | {', '.join(f'{v:.1f}' for v in r['finals'])} | {r['median_final']:.1f} | "
                             f"{r['score_ratio']:.2f} | {r['train_s_ratio']:.2f} |")
    (HERE / "summary.json").write_text(json.dumps({"runs": runs, "games": games}, indent=1) + "\n")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
