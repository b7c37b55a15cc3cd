#!/usr/bin/env bash
# `asyncdqn train --env MountainCar-v0` with nothing else but a fresh seed (100-104: never used in
# any search) and a run directory, one run at a time; keeps each run's config.json and eval.json here.
set -u
cd "$(dirname "$0")/../../.."
rec=benchmarks/records/mountaincar-2026-12-07
for seed in "${@:-100 101 102 103 104}"; do
  run=/tmp/i31/mc/verify-s$seed
  PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 nice -n 5 /work/main/.venv/bin/python -m asyncdqn.cli train \
    --env MountainCar-v0 --seed "$seed" --run-dir "$run" --no-progress > "$run.log" 2>&1
  mkdir -p "$rec/runs/seed-$seed"
  cp "$run/config.json" "$run/eval.json" "$rec/runs/seed-$seed/"
  tail -5 "$run.log"
done
