#!/usr/bin/env bash
# LayerNorm probes on a MinAtar game (GAME, default Breakout): the preset (n-step Q, 2 workers x 16 envs, Adam lr 5e-4
# annealed to 0 over the budget, target every 40k steps) with and without --layer-norm, a budget
# in env steps (MinAtar: 1 step = 1 frame), one run at a time, nice'd. Usage (from the repository):
#   STEPS=1000000 SEEDS="0 1" bash benchmarks/records/layernorm-2026-12-07/probes.sh
#   GAME=Seaquest STEPS=1000000 SEEDS=0 bash benchmarks/records/layernorm-2026-12-07/probes.sh
set -euo pipefail
GAME=${GAME:-Breakout}
STEPS=${STEPS:-1000000}
SEEDS=${SEEDS:-"0 1"}
OUT=${OUT:-runs/layernorm-2026-12-07}
PY=${PY:-.venv/bin/python}
for seed in $SEEDS; do
  for ln in off on; do
    flag=$([ "$ln" = on ] && echo --layer-norm || echo --no-layer-norm)
    dir="$OUT/${GAME,,}-$((STEPS / 1000))k-ln-$ln-s$seed"
    [ -f "$dir/eval.json" ] && continue
    OMP_NUM_THREADS=1 nice -n 5 "$PY" -m asyncdqn.cli train --env "MinAtar/$GAME-v1" --seed "$seed" \
      --max-steps "$STEPS" $flag --no-progress --run-dir "$dir"
  done
done
