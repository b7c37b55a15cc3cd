#!/usr/bin/env bash
# The FrozenLake-v1 preset (n-step Q) over fresh seeds 10-14 (tuning used seeds 1-3), one run at a
# time; run directories under /tmp, each run's JSON and the summary copied here.
set -eu
cd "$(dirname "$0")/../../.."
out=/tmp/i31/bench-frozenlake
PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 nice -n 5 /work/main/.venv/bin/python -m asyncdqn.cli bench presets \
  --envs FrozenLake-v1 --algos n-step-q --seed-list 10 11 12 13 14 --out "$out"
rec=benchmarks/records/frozenlake-2026-12-07
mkdir -p "$rec/bench"
cp "$out"/FrozenLake-*.json "$rec/bench/"
cp "$out"/summary.json "$out"/summary.md "$rec/"
python benchmarks/bundle_records.py "$rec"
