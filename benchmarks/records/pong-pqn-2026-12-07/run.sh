#!/usr/bin/env bash
# One hour of ALE/Pong-v5 (sticky actions 0.25, as a user gets it) on the 2-core VM, alone on
# the cores: the PQN ingredients of docs/algorithms.md on the asynchronous n-step Q learner.
#   bash benchmarks/records/pong-pqn-2026-12-07/run.sh SEED RUNS_ROOT [extra train options]
set -euo pipefail
SEED=${1:?seed}; ROOT=${2:?runs root}; shift 2
exec asyncdqn train --env ALE/Pong-v5 --seed "$SEED" --runs-root "$ROOT" \
  --network nature --layer-norm \
  --returns lambda --lam 0.65 --target-update-steps 0 --t-max 32 --envs-per-worker 8 \
  --epochs 2 --minibatches 2 --optimizer radam --lr 2.5e-4 --adam-eps 1e-5 --grad-clip 10 \
  --eps-anneal-steps 400000 --final-epsilons 0.01 --final-epsilon-probs 1.0 \
  --workers 2 --max-seconds 3300 --eval-every-steps 250000 --eval-episodes 10 --screen-episodes 10 \
  "$@"
