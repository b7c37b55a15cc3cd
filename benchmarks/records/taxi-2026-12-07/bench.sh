#!/usr/bin/env bash
# Taxi-v4's preset (dqn, 1M-step budget) over 5 fresh seeds, judged against Gymnasium's reward_threshold 8.
# Usage: bench.sh OUT_DIR
set -euo pipefail
OUT=${1:?out dir}
exec asyncdqn bench presets --envs Taxi-v4 --algos dqn --seed-list 100 101 102 103 104 --set solve_score=8 --out "$OUT"
