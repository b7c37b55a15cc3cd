#!/usr/bin/env bash
# PQN's MinAtar recipe (mttga/purejaxql's pqn_minatar: Q(lambda) 0.65, LayerNorm, no target network,
# 2 epochs of 128-row minibatches, epsilon to 0.05 over 10 % of the budget, lr 5e-4 annealed) on the
# asynchronous learner, against the MinAtar preset, 5M frames, on tuning seeds. Two runs at a time
# (scores at a fixed frame budget do not depend on the wall time; wall times here are not figures).
#   bash benchmarks/records/minatar-pqn-2026-12-07/probes.sh RUNS_ROOT ["GAMES"] ["SEEDS"] ["VARIANTS"]
set -euo pipefail
ROOT=${1:?runs root}; GAMES=${2:-"Seaquest"}; SEEDS=${3:-"0 1"}; VARIANTS=${4:-"preset pqn"}
mkdir -p "$ROOT"
PQN=(--returns lambda --lam 0.65 --target-update-steps 0 --lambda-values act --t-max 32 --epochs 2
     --minibatches 4 --eps-anneal-steps 500000 --final-epsilons 0.05 --final-epsilon-probs 1.0)
one() {  # game seed variant
  local dir="$ROOT/${1,,}-s$2-$3"
  [ -f "$dir/eval.json" ] && return 0
  local extra=(); [ "$3" = pqn ] && extra=("${PQN[@]}")
  OMP_NUM_THREADS=1 asyncdqn train --env "MinAtar/$1-v1" --seed "$2" --no-progress --run-dir "$dir" \
    "${extra[@]}" > "$ROOT/${1,,}-s$2-$3.log" 2>&1 || echo "failed: $dir"
}
runs=()
for game in $GAMES; do for seed in $SEEDS; do for v in $VARIANTS; do runs+=("$game $seed $v"); done; done; done
for ((i = 0; i < ${#runs[@]}; i += 2)); do
  one ${runs[i]} &
  if [ $((i + 1)) -lt ${#runs[@]} ]; then one ${runs[i + 1]} & fi
  wait
done
