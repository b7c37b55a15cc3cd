"""The repository holds code, docs and record summaries: never raw run data or large files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_BYTES = 1_000_000
# What a run directory holds besides config.json/eval.json: metrics, checkpoints, locks, per-run
# curves, databases. A record keeps summaries (see benchmarks/README.md), never these.
RUN_DATA = re.compile(
    r"(^|/)checkpoints/|\.lock$|(^|/)metrics\.csv(\.gz)?$|\.safetensors$|\.db$|(^|/)learning_curve\.png$"
)


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p]


def test_run_data_pattern_matches_what_it_must() -> None:
    for bad in ("benchmarks/records/x/run-s0/checkpoints/step_1.safetensors", "r/run/.lock",
                "r/run/metrics.csv", "r/run/metrics.csv.gz", "r/study.db", "r/run/learning_curve.png"):
        assert RUN_DATA.search(bad), bad
    for good in ("benchmarks/records/x/runs.json", "benchmarks/records/x/README.md", "docs/solve_curves.png",
                 "src/asyncdqn/rundir/checkpoint.py", "tests/rundir/test_checkpoint.py"):
        assert not RUN_DATA.search(good), good


def test_no_run_data_is_tracked() -> None:
    offenders = [p for p in _tracked() if RUN_DATA.search(p)]
    assert not offenders, f"raw run data is tracked (records keep summaries only): {offenders[:10]}"


def test_no_tracked_file_is_large() -> None:
    big = [(p, size) for p in _tracked() if (f := ROOT / p).is_file() and (size := f.stat().st_size) > MAX_FILE_BYTES]
    assert not big, f"tracked files over {MAX_FILE_BYTES} bytes: {big}"
