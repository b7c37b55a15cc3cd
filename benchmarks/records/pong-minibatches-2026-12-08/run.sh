#!/usr/bin/env bash
# One hour of ALE/Pong-v5 (sticky actions 0.25) on the 2-core VM, alone on the cores: the Atari
# preset of 2026-12-07 (../pong-pqn-2026-12-07/run.sh gives it option by option) with 8 minibatches
# of 32 rows per epoch instead of 2 of 128.
#   bash benchmarks/records/pong-minibatches-2026-12-08/run.sh SEED RUNS_ROOT [extra train options]
set -euo pipefail
SEED=${1:?seed}; ROOT=${2:?runs root}; shift 2
exec bash "$(dirname "$0")/../pong-pqn-2026-12-07/run.sh" "$SEED" "$ROOT" --minibatches 8 "$@"
