#!/usr/bin/env bash
# The Pong curve: one budgeted run of asyncdqn n-step Q on ALE/Pong-v5 with its preset
# (src/asyncdqn/presets.py; both cores), greedy score of whole games every 250k agent steps (1M
# frames). Records the curve and the wall time at which the greedy score first reached 0 and 18;
# the run stops at 18 (--solve-score) or when the budget is spent (the preset's 10M-step cap is
# lifted so that the clock decides; the learning rate anneals to 0 over 20M steps = 80M frames,
# the paper's training length, so it is still learning when the 3 hours end).
#
#   bash benchmarks/records/pong-2026-12-01/pong.sh                              # 3 h, seed 0, into benchmarks/records/pong-<date>/
#   BUDGET=3600 bash benchmarks/records/pong-2026-12-01/pong.sh                  # a shorter budget
#   OUT=benchmarks/records/pong-2026-12-01 bash benchmarks/records/pong-2026-12-01/pong.sh   # continue an interrupted run
#   SUMMARY_ONLY=1 OUT=... bash benchmarks/records/pong-2026-12-01/pong.sh       # rewrite pong.md and the curve, train nothing
#
# The budget counts training wall time over the whole run: an interrupted run (Ctrl-C, end of a
# session) resumes from its last checkpoint and the clock goes on from where it stopped, so the
# 3 hours can be spread over several sittings. Evaluation time is inside the wall clock.
set -euo pipefail
stopped=0
cd "$(dirname "$0")/../../.."
OUT=${OUT:-benchmarks/records/pong-$(date -u +%Y-%m-%d)}
BUDGET=${BUDGET:-10800}
SEED=${SEED:-0}
BIN=${BIN:-.venv/bin/asyncdqn}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1
run="$OUT/run-s$SEED"
mkdir -p "$OUT"
{ date -u; uname -a; nproc --all; uptime; } >> "$OUT/machine.txt"

finished() {  # 18 reached, the budget spent, or the preset's step budget reached
  [ -f "$run/eval.json" ] && "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1]))
sys.exit(0 if r["stop_reason"] in ("max_steps", "solved") or r["wall_time_s"] >= float(sys.argv[2]) else 1)' \
    "$run/eval.json" "$BUDGET"
}
if [ "${SUMMARY_ONLY:-0}" = 1 ]; then
  echo "summary only: $run"
elif finished; then
  echo "done already: $run"
elif [ -f "$run/config.json" ]; then
  "$BIN" train --resume "$run" --max-seconds "$BUDGET" --no-progress 2>&1 | tee -a "$OUT/train.log" || stopped=$?
else
  # --solve-score 18: the run stops once a greedy evaluation (5 whole games) averages >= 18
  "$BIN" train --env ALE/Pong-v5 --seed "$SEED" --max-seconds "$BUDGET" --max-steps 1000000000 --lr-anneal-steps 20000000 \
    --solve-score 18 --run-dir "$run" --no-progress \
    2>&1 | tee "$OUT/train.log" || stopped=$?
fi

"$PY" - "$run" "$OUT" "$BUDGET" <<'PYEOF'
import csv, gzip, json, sys
from pathlib import Path
run, out = Path(sys.argv[1]), Path(sys.argv[2])
plain = run / "metrics.csv"  # metrics.csv.gz once a record is compressed for the repository
with (open(plain) if plain.exists() else gzip.open(run / "metrics.csv.gz", "rt")) as f:
    evals = [r for r in csv.DictReader(f) if r["kind"] == "eval"]
cfg = json.loads((run / "config.json").read_text())
report = json.loads((run / "eval.json").read_text()) if (run / "eval.json").exists() else {}
lines = ["| agent steps | frames | wall s | greedy mean ± std (games) |", "|---|---|---|---|"]
first = {0: None, 18: None}
for r in evals:
    step, wall, mean = int(r["step"]), float(r["wall_time"]), float(r["eval_mean"])
    for score in first:
        if first[score] is None and mean >= score:
            first[score] = (wall, step)
    lines.append(f"| {step:,} | {4 * step:,} | {wall:,.0f} | {mean:.1f} ± {float(r['eval_std']):.1f} "
                 f"({r['eval_episodes']}) |")
def when(score):
    hit = first[score]
    return f"{hit[0]:,.0f} s ({4 * hit[1]:,} frames)" if hit else "not reached"
head = [f"# ALE/Pong-v5, asyncdqn {cfg['algo']}, seed {cfg['seed']}: {report.get('wall_time_s', 0):,.0f} s of training "
        f"wall time (stopped: {report.get('stop_reason', 'still running')}; budget {int(sys.argv[3]):,} s)", "",
        f"- greedy score first >= 0: {when(0)}", f"- greedy score first >= 18: {when(18)}",
        f"- env steps: {report.get('total_steps', 0):,} agent steps = {4 * report.get('total_steps', 0):,} frames "
        f"({report.get('steps_per_second', 0):,.0f} agent steps/s)", ""]
(out / "pong.md").write_text("\n".join(head + lines) + "\n")
print("\n".join(head + lines))
PYEOF
"$BIN" compare "$run" --out "$OUT/curve" > /dev/null || true  # curve.png, curve.md (not pong.md)
if [ "$stopped" != 0 ]; then  # interrupted (exit 130/143) or failed: pong.md shows the curve so far
  echo "train exited with status $stopped; run the same command again to continue"; exit "$stopped"
fi
