"""`asyncdqn bench throughput` for the Atari network variants: the same measurement (the ALE
ceiling of the learner's wrapped envs stepped by as many processes with random actions, then
the n-step Q trainer) with config overrides the CLI has no flag for. Measured under load:
provisional. Run from the repository (R = benchmarks/records/layernorm-2026-12-07):

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 python $R/throughput_variants.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from asyncdqn.bench.throughput import format_table, run_throughput

VARIANTS = {
    "nature-ln": {"network": "nature", "layer_norm": True},
    "atari-16envs": {"envs_per_worker": 16},
}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, overrides in VARIANTS.items():
        report = run_throughput("ALE/Pong-v5", ("n-step-q",), max_workers=2, seconds=15.0, overrides=overrides,
                                log=lambda m: print(m, file=sys.stderr))
        report["overrides"] = overrides
        (out / f"pong-{name}.json").write_text(json.dumps(report, indent=1) + "\n")
        print(f"## {name} {overrides}\n{format_table(report)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
