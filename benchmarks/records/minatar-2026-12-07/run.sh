#!/usr/bin/env bash
# MinAtar with today's preset (n-step Q with LayerNorm), 5M frames, on seeds no choice was tuned on,
# one run at a time, alone on the cores. Breakout and SpaceInvaders also run with --backend ray (one
# local node, the same 2 cores), the two backends of one seed back to back, the order alternating.
#   bash benchmarks/records/minatar-2026-12-07/run.sh RUNS_ROOT [SEEDS] [GAMES]
set -euo pipefail
ROOT=${1:?runs root}; SEEDS=${2:-"10 11 12"}; GAMES=${3:-"Breakout SpaceInvaders Asterix Freeway Seaquest"}
mkdir -p "$ROOT"
one() {  # game seed backend
  local dir="$ROOT/${1,,}-s$2-$3"
  [ -f "$dir/eval.json" ] && return 0
  local t0; t0=$(date +%s.%N)
  asyncdqn train --env "MinAtar/$1-v1" --seed "$2" --backend "$3" --no-progress --run-dir "$dir" > "$ROOT/${1,,}-s$2-$3.log" 2>&1
  awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.9f\n", t1 - t0 }' > "$dir/wall_seconds.txt"
}
i=0
for game in $GAMES; do
  for seed in $SEEDS; do
    if [ "$game" = Breakout ] || [ "$game" = SpaceInvaders ]; then
      if [ $((i % 2)) = 0 ]; then one "$game" "$seed" process; one "$game" "$seed" ray
      else one "$game" "$seed" ray; one "$game" "$seed" process; fi
      i=$((i + 1))
    else
      one "$game" "$seed" process
    fi
  done
done
