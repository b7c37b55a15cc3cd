#!/usr/bin/env bash
# Taxi-v4's preset (dqn, 1M-step budget) over 5 seeds. Usage: bench.sh OUT_DIR [SEED ...] [-- --set KEY=VALUE ...]
#   first round, judged against Gymnasium's threshold:  bench.sh OUT 100 101 102 103 104 -- --set solve_score=8
#   the preset's score (7.5), fresh seeds:              bench.sh OUT 105 106 107 108 109
set -euo pipefail
OUT=${1:?out dir}; shift
SEEDS=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do SEEDS+=("$1"); shift; done; [ $# -gt 0 ] && shift
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(105 106 107 108 109)
exec asyncdqn bench presets --envs Taxi-v4 --algos dqn --seed-list "${SEEDS[@]}" --out "$OUT" "$@"
