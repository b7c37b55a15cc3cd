#!/usr/bin/env bash
# The MinAtar table: 5 games x 3 seeds x {asyncdqn n-step Q, replay DQN}, 5M frames each
# (MinAtar has no frame skip: 5M frames = 5M env steps = --max-steps 5000000), every run with its
# preset (src/asyncdqn/presets.py) and both cores. 30 runs: hours on a 2-core machine.
#
#   bash benchmarks/records/minatar-2026-12-01/minatar.sh                       # everything, into benchmarks/records/minatar-<date>/
#   GAMES=Breakout SEEDS=0 ALGOS=n-step-q bash benchmarks/records/minatar-2026-12-01/minatar.sh   # a slice
#   OUT=benchmarks/records/minatar-2026-12-02 bash benchmarks/records/minatar-2026-12-01/minatar.sh  # continue an earlier table
#
# Re-running skips finished runs (eval.json written) and resumes interrupted ones from their last
# checkpoint, so the table can be filled across sessions. Per game, `asyncdqn compare` writes
# GAME.png / GAME.md; summary.md lists every run (final and best greedy mean, wall time, env steps/s)
# beside the MinAtar paper's DQN figures at 5M frames.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-benchmarks/records/minatar-$(date -u +%Y-%m-%d)}
GAMES=${GAMES:-"Asterix Breakout Freeway Seaquest SpaceInvaders"}
SEEDS=${SEEDS:-"0 1 2"}
ALGOS=${ALGOS:-"n-step-q dqn"}
STEPS=${STEPS:-5000000}
BIN=${BIN:-.venv/bin/asyncdqn}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1
mkdir -p "$OUT/runs" "$OUT/logs"
{ date -u; uname -a; nproc --all; uptime; } >> "$OUT/machine.txt"

for game in $GAMES; do
  for algo in $ALGOS; do
    for seed in $SEEDS; do
      run="$OUT/runs/$game-$algo-s$seed"
      log="$OUT/logs/$game-$algo-s$seed.log"
      if [ -f "$run/eval.json" ] && grep -q '"stop_reason": "max_steps"' "$run/eval.json"; then
        echo "done already: $run"; continue
      fi
      echo "$(date -u +%T) $game $algo seed $seed -> $run"
      if [ -f "$run/config.json" ]; then
        "$BIN" train --resume "$run" --max-steps "$STEPS" --no-progress >> "$log" 2>&1
      else
        "$BIN" train --env "MinAtar/$game-v1" --algo "$algo" --seed "$seed" --max-steps "$STEPS" \
          --run-dir "$run" --no-progress > "$log" 2>&1
      fi
      tail -3 "$log"
    done
  done
  "$BIN" compare "$OUT"/runs/"$game"-*-s* --out "$OUT/$game" > /dev/null || true
done

"$PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
# MinAtar repository's learning-curve figure at 5M frames: DQN with replay, and without.
ref = {"Asterix": (17, 5.4), "Breakout": (10, 4.2), "Freeway": (50, 8.5), "Seaquest": (20, 0.4),
       "SpaceInvaders": (43, 13.5)}
lines = ["| game | algo | seed | env steps | wall s | steps/s | final greedy mean ± std | best greedy mean (step) "
         "| MinAtar DQN @5M | DQN w/o replay @5M |", "|" + "---|" * 10]
for run in sorted((out / "runs").iterdir()):
    ev = run / "eval.json"
    if not run.is_dir() or not ev.exists():
        continue
    r = json.loads(ev.read_text())
    game, algo, seed = run.name.split("-", 1)[0], run.name.rsplit("-s", 1)[0].split("-", 1)[1], run.name.rsplit("-s", 1)[1]
    fe, be = r.get("final_eval") or {}, r.get("best_eval") or {}
    final = f"{fe['mean']:.2f} ± {fe['std']:.2f}" if fe else r["stop_reason"]
    best = f"{be['mean']:.2f} ({be['step']:,})" if be else "-"
    dqn, noreplay = ref.get(game, ("?", "?"))
    lines.append(f"| {game} | {algo} | {seed} | {r['total_steps']:,} | {r['wall_time_s']:.0f} | "
                 f"{r['steps_per_second']:,.0f} | {final} | {best} | {dqn} | {noreplay} |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
