#!/usr/bin/env bash
# The MinAtar preset as a user gets it (`asyncdqn train --env MinAtar/<Game>-v1 --seed S`, nothing
# else: PQN's settings since 2026-12-08), 5M frames, on seeds no choice was tuned on. Two runs at a
# time, one thread each (a fixed frame budget: the scores do not depend on the wall time, and the
# wall times here are not figures). BACKENDS "process ray" adds a Ray run (one local node group of
# the same 2 workers) of every game and seed, paired with the process run of the same seed.
#   bash benchmarks/records/minatar-pqn-2026-12-07/fresh.sh RUNS_ROOT ["GAMES"] ["SEEDS"] ["BACKENDS"]
set -euo pipefail
ROOT=${1:?runs root}; GAMES=${2:-"Asterix Breakout Freeway Seaquest SpaceInvaders"}
SEEDS=${3:-"10 11 12"}; BACKENDS=${4:-"process"}
mkdir -p "$ROOT"
one() {  # game seed backend
  local dir="$ROOT/${1,,}-s$2-$3"
  [ -f "$dir/eval.json" ] && return 0
  OMP_NUM_THREADS=1 asyncdqn train --env "MinAtar/$1-v1" --seed "$2" --backend "$3" --no-progress \
    --run-dir "$dir" > "$ROOT/${1,,}-s$2-$3.log" 2>&1 || echo "failed: $dir"
}
runs=()
for game in $GAMES; do for seed in $SEEDS; do for b in $BACKENDS; do runs+=("$game $seed $b"); done; done; done
for ((i = 0; i < ${#runs[@]}; i += 2)); do
  one ${runs[i]} &
  if [ $((i + 1)) -lt ${#runs[@]} ]; then one ${runs[i + 1]} & fi
  wait
done
