#!/usr/bin/env bash
# Short step-budget runs of n-step Q on MountainCar-v0, one at a time, on tuning seeds (1-3),
# never the verification seeds. Usage: search.sh NAME SEED [extra train options...]
# Outputs under /tmp/i31/mc/NAME-sSEED (run directories are not committed).
set -u
name=$1; seed=$2; shift 2
cd "$(dirname "$0")/../../.."
PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 nice -n 5 /work/main/.venv/bin/python -m asyncdqn.cli train \
  --env MountainCar-v0 --seed "$seed" --max-seconds 300 --solve-score -110 --eval-every-steps 50000 \
  --run-dir "/tmp/i31/mc/$name-s$seed" --no-progress "$@" > "/tmp/i31/mc/$name-s$seed.log" 2>&1
tail -4 "/tmp/i31/mc/$name-s$seed.log"
