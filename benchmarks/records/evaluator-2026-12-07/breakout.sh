#!/usr/bin/env bash
# The Breakout time bound: `train --env ALE/Breakout-v5 --workers 2 --max-seconds 30` must return
# within 2 minutes whatever the greedy policy does (an agent that never serves plays each
# evaluation game to ALE's 108k-frame cap). Usage: breakout.sh SRC OUT_DIR
# (SRC: the src directory put on PYTHONPATH; OUT_DIR receives run/ and time.txt).
set -euo pipefail
src=$1
out=$2
mkdir -p "$out"
start=$(date +%s.%N)
PYTHONPATH="$src" OMP_NUM_THREADS=1 nice -n 5 python -m asyncdqn.cli train --env ALE/Breakout-v5 --workers 2 \
    --max-seconds 30 --no-progress --run-dir "$out/run" > "$out/stdout.txt" 2> "$out/stderr.txt"
end=$(date +%s.%N)
echo "wall seconds from launch to return: $(echo "$end - $start" | bc)" | tee "$out/time.txt"
