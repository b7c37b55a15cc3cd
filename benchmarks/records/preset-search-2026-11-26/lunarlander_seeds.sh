#!/usr/bin/env bash
# Time-to-solve of the default LunarLander-v3 preset over several seeds, exactly as
# `make train` runs it (workers = cores). Usage: benchmarks/records/preset-search-2026-11-26/lunarlander_seeds.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/../../.."
make install >/dev/null
out=${OUT:-benchmarks/results}
mkdir -p "$out"
for seed in "${@:-0 1 2}"; do
  dir="$out/lunarlander-seed$seed-$(date +%Y%m%d-%H%M%S)"
  OMP_NUM_THREADS=1 .venv/bin/asyncdqn train --env LunarLander-v3 --seed "$seed" --run-dir "$dir" --no-progress --json \
    | .venv/bin/python -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({k: r[k] for k in ("run_dir","solved","time_to_solve_s","steps_to_solve","total_steps","steps_per_second")} | {"solve_eval": {k: r["solve_eval"][k] for k in ("mean","std","episodes")} if r["solve_eval"] else None}))'
done
