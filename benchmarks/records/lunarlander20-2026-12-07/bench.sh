#!/usr/bin/env bash
# LunarLander-v3's default preset (n-step-q) over 20 fresh seeds (200-219: never used by any tuning
# or earlier record), exactly as `asyncdqn train --env LunarLander-v3` resolves it, one run at a time,
# alone on the cores. Usage: bench.sh OUT_DIR   (per-run JSON and the summary land in OUT_DIR)
set -euo pipefail
OUT=${1:?out dir}
exec asyncdqn bench presets --envs LunarLander-v3 --algos n-step-q --seed-list $(seq 200 219) --out "$OUT"
