#!/bin/bash
# Time to solve, process vs ray (1 local node, 2 workers), alternating per seed under one protocol
# (`asyncdqn bench solve`, the default preset of the env, greedy checks every CHECK s).
# usage: solve_compare.sh ENV SCORE BUDGET CHECK OUTDIR SEED...   (the machine was shared with other jobs)
ENV=$1; SCORE=$2; BUDGET=$3; CHECK=$4; OUT=$5; shift 5
BIN=$(dirname "$0")/../../../.venv/bin
for s in "$@"; do
  for b in process ray; do
    "$BIN/asyncdqn" bench solve --env "$ENV" --contenders asyncdqn --seed-list "$s" --budget "$BUDGET" \
      --check-every "$CHECK" --score "$SCORE" --set backend=$b --set workers=2 --out "$OUT/$b" 2>&1 \
      | grep -v "WARNING auth" | tail -4
  done
done
