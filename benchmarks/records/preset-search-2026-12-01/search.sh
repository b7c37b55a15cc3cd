#!/usr/bin/env bash
# Preset search for LunarLander-v3 n-step-q on seeds 10-14 (never the benchmark's 0-4):
# each variant as the asyncdqn-envpool contender of `asyncdqn bench solve`, seeds outermost so
# that every variant sees the same machine conditions. Usage: search.sh OUT_ROOT
set -euo pipefail
out=${1:-benchmarks/records/preset-search-2026-12-01}
export OMP_NUM_THREADS=1
declare -A variants=(
  [base-128x2-k8]=""
  [64x2-k16]="--set hidden_sizes=[64,64] --set envs_per_worker=16"
  [128x2-k16]="--set envs_per_worker=16"
  [64x2-k8]="--set hidden_sizes=[64,64]"
)
for seed in 10 11 12 13 14; do
  for v in base-128x2-k8 64x2-k16 128x2-k16 64x2-k8; do
    # shellcheck disable=SC2086
    asyncdqn bench solve --contenders asyncdqn-envpool --seed-list "$seed" --budget 200 --check-every 5 \
      ${variants[$v]} --out "$out/$v" | grep -E "seed|solved" | head -2
  done
done
for v in base-128x2-k8 64x2-k16 128x2-k16 64x2-k8; do echo "== $v"; tail -n 3 "$out/$v/summary.md"; done
