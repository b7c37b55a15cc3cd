#!/usr/bin/env bash
# LunarLander-v3 time to solve, `asyncdqn bench solve` protocol, the old code against today's main,
# interleaved seed by seed in one run so that both see the same machine:
#   old          the code before 2026-12-07 (commit b8fb9ff: evaluation inline in the trainer, the
#                n-step-q preset with a target network copied every 4000 steps, 1 epoch)
#   new          main: the evaluator process, the preset without a target network, 2 epochs x 2 minibatches
#   new-target   main with the old preset's options (target copy every 4000 steps, 1 epoch of 1 minibatch):
#                the evaluator process alone
# Usage: OLD_SRC=/path/to/checkout-of-b8fb9ff/src bash ab.sh OUT_DIR SEED [SEED ...]
set -euo pipefail
OUT=${1:?out dir}; shift
OLD_SRC=${OLD_SRC:?checkout of b8fb9ff/src}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1
cli() { "$PY" -c 'import sys; from asyncdqn.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; }
for seed in "$@"; do
  PYTHONPATH="$OLD_SRC" cli bench solve --contenders asyncdqn --seed-list "$seed" --out "$OUT/old"
  cli bench solve --contenders asyncdqn --seed-list "$seed" --out "$OUT/new"
  cli bench solve --contenders asyncdqn --seed-list "$seed" --out "$OUT/new-target" \
    --set target_update_steps=4000 --set epochs=1 --set minibatches=1
done
