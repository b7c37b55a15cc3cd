"""Smoke test of `asyncdqn bench throughput` (numbers are not asserted: timing belongs to benchmarks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_throughput_smoke(tmp_path: Path) -> None:
    out = tmp_path / "tp.json"
    proc = subprocess.run(
        [sys.executable, "-m", "asyncdqn.cli", "bench", "throughput", "--env", "CartPole-v1", "--algos", "n-step-q",
         "--max-workers", "1", "--seconds", "0.5", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    kinds = [(r["kind"], r["workers"]) for r in report["rows"]]
    assert kinds == [("ceiling", 1), ("n-step-q", 1)]
    assert all(r["steps"] > 0 and r["seconds"] > 0 for r in report["rows"])
    assert "of ceiling" in proc.stdout


def test_bench_rejects_unknown_algo(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "asyncdqn.cli", "bench", "throughput", "--algos", "nope"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown algorithm 'nope'" in proc.stderr and "Traceback" not in proc.stderr
