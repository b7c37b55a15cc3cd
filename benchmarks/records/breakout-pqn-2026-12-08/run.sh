#!/usr/bin/env bash
# ALE/Breakout-v5 as a user gets it (sticky actions 0.25) with the Atari preset and nothing else
# but the seed and the wall-time budget, on the 2-core VM, alone on the cores.
#   bash benchmarks/records/breakout-pqn-2026-12-08/run.sh SEED RUNS_ROOT SECONDS
#   asyncdqn train --resume RUNS_ROOT/<run> --max-seconds 7200      # on to two hours
set -euo pipefail
SEED=${1:?seed}; ROOT=${2:?runs root}; SECONDS_=${3:?max seconds}
exec asyncdqn train --env ALE/Breakout-v5 --seed "$SEED" --runs-root "$ROOT" --max-seconds "$SECONDS_"
