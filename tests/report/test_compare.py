"""`asyncdqn compare` on synthetic run directories with known numbers."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asyncdqn.errors import RunDirError
from asyncdqn.report.compare import band, compare, step_curve
from asyncdqn.rundir.metrics import COLUMNS

PNG = b"\x89PNG\r\n\x1a\n"


def make_run(root: Path, name: str, label: str | None, evals: list[tuple[int, float, float]],
             result: dict | None, algo: str = "dqn") -> Path:
    """A run dir: config.json, metrics.csv with one episode row and `evals` (step, time, mean) rows."""
    d = root / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"env_id": "CartPole-v1", "algo": algo, "label": label,
                                               "solve_score": 475.0}))
    with open(d / "metrics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        w.writerow(["episode", 10, "0.1", 0, "12.0", 12, "1.0", "", "", ""])
        for step, t, mean in evals:
            w.writerow(["eval", step, f"{t:.3f}", "", "", "", "", f"{mean:.4f}", "1.0", 10])
    if result is not None:
        (d / "eval.json").write_text(json.dumps(result))
    return d


def result(solved: bool, tts: float | None, sts: int | None, returns: list[float]) -> dict:
    return {"solved": solved, "time_to_solve_s": tts, "steps_to_solve": sts,
            "final_eval": {"mean": float(np.mean(returns)), "std": float(np.std(returns)),
                           "episodes": len(returns), "returns": returns}}


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    return [
        make_run(tmp_path, "a1", "async", [(100, 1.0, 10.0), (200, 2.0, 480.0)],
                 result(True, 2.0, 200, [480.0, 500.0])),
        make_run(tmp_path, "a2", "async", [(100, 1.5, 30.0), (200, 3.0, 100.0), (300, 4.0, 490.0)],
                 result(True, 4.0, 300, [490.0, 490.0])),
        make_run(tmp_path, "a3", "async", [(100, 2.0, 5.0)], result(False, None, None, [20.0, 40.0])),
        make_run(tmp_path, "d1", None, [(1000, 10.0, 50.0)], result(False, None, None, [60.0])),
        make_run(tmp_path, "d2", None, [(1000, 12.0, 70.0), (2000, 20.0, 90.0)], None),  # unfinished
    ]


def test_table_values(runs, tmp_path):
    png, md, groups = compare([str(r) for r in runs], tmp_path / "out")
    assert png == tmp_path / "out.png" and md == tmp_path / "out.md"
    assert png.read_bytes().startswith(PNG)
    assert [g.label for g in groups] == ["async", "dqn CartPole-v1"]
    a, d = groups
    assert a.n_solved == 2 and len(a.runs) == 3
    assert a.median_time_to_solve() == 3.0  # median of 2.0 and 4.0 (the unsolved run is ignored)
    assert a.median_steps_to_solve() == 250.0
    mean, std = a.final_mean_std()  # pooled final episodes: 480, 500, 490, 490, 20, 40
    assert mean == pytest.approx(np.mean([480, 500, 490, 490, 20, 40]))
    assert std == pytest.approx(np.std([480, 500, 490, 490, 20, 40]))
    assert d.n_solved == 0 and d.median_time_to_solve() is None
    assert d.final_mean_std() == pytest.approx((75.0, 15.0))  # 60 and the unfinished run's last eval 90
    lines = md.read_text().splitlines()
    assert lines[2] == f"| async | 3 | 2/3 | 3.0 | 250 | {mean:.1f} ± {std:.1f} |"
    assert lines[3] == "| dqn CartPole-v1 | 2 | 0/2 | — | — | 75.0 ± 15.0 |"


def test_step_curve_and_band(runs, tmp_path):
    grid = np.array([0.0, 100.0, 150.0, 200.0, 250.0, 300.0, 400.0])
    got = step_curve(np.array([100.0, 200.0]), np.array([10.0, 480.0]), grid)
    np.testing.assert_array_equal(got[1:], [10.0, 10.0, 480.0, 480.0, 480.0, 480.0])
    assert np.isnan(got[0])
    _, _, groups = compare([str(r) for r in runs[:3]], tmp_path / "b")
    mean, lo, hi = band(groups[0], "step", grid)
    assert np.isnan(mean[0])
    # at step 250: runs hold 480, 100, 5
    assert mean[4] == pytest.approx((480 + 100 + 5) / 3) and lo[4] == 5.0 and hi[4] == 480.0
    # at step 300: 480, 490, 5
    assert mean[5] == pytest.approx((480 + 490 + 5) / 3)


def test_missing_run_is_a_run_dir_error(tmp_path):
    with pytest.raises(RunDirError):
        compare([str(tmp_path / "nope")], tmp_path / "x")


def test_cli_compare(runs, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "asyncdqn.cli", "compare", *map(str, runs), "--out",
                        str(tmp_path / "cli.md")], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "| async | 3 | 2/3 |" in r.stdout
    assert (tmp_path / "cli.png").read_bytes().startswith(PNG)
    bad = subprocess.run([sys.executable, "-m", "asyncdqn.cli", "compare", str(tmp_path / "missing")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("asyncdqn: error:")
