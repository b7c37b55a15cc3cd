"""The repository holds code, docs and record summaries: never raw run data or large files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_BYTES = 1_000_000
MAX_TREE_BYTES = 5_000_000  # the whole tracked tree (it was 106 MB of committed run directories)
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


def test_the_tracked_tree_stays_small() -> None:
    total = sum(f.stat().st_size for p in _tracked() if (f := ROOT / p).is_file())
    assert total <= MAX_TREE_BYTES, f"the tracked files hold {total:,} bytes, over {MAX_TREE_BYTES:,}"


def test_bundling_folds_run_files_and_keeps_their_content(tmp_path: Path) -> None:
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("bundle_records", ROOT / "benchmarks" / "bundle_records.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    record = tmp_path / "rec"
    (record / "run-s0").mkdir(parents=True)
    (record / "run-s0" / "eval.json").write_text(json.dumps({"final": {"mean": 200.5}}))
    (record / "run-s0" / "train.log").write_text("line 1\nline 2\n")
    (record / "search.log").write_text("top-level log\n")
    (record / "summary.json").write_text("{}")  # the record's own summary: stays
    (record / "README.md").write_text("# r\n")
    assert mod.bundle(record) == 3
    assert sorted(p.name for p in record.rglob("*")) == ["README.md", "runs.json", "summary.json"]  # no empty folder
    runs = json.loads((record / "runs.json").read_text())
    assert runs == {"run-s0/eval.json": {"final": {"mean": 200.5}}, "run-s0/train.log": "line 1\nline 2\n",
                    "search.log": "top-level log\n"}
    (record / "late.csv").write_text("a,b\n1,2\n")  # a second pass merges
    assert mod.bundle(record) == 1 and len(json.loads((record / "runs.json").read_text())) == 4
    assert len((record / "runs.json").read_text().splitlines()) == 6  # braces + one line per file
