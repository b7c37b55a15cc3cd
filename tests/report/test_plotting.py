"""Tests for asyncdqn.report.plotting (synthetic run directories, no training)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from asyncdqn.report.plotting import moving_average, plot_run, plot_runs, read_run
from asyncdqn.rundir.metrics import METRICS_COLUMNS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPECTED_SHAPE = (600, 1560)  # 13 x 5 inches at dpi 120


def make_run(
    root: Path,
    name: str = "run",
    *,
    episodes: list[tuple] = (),
    evals: list[tuple] = (),
    config: dict | None = None,
    header: list[str] | None = None,
) -> Path:
    """episodes: (step, wall_time, worker, return, length, epsilon); evals: (step, wall_time, mean, std)."""
    d = root / name
    d.mkdir(parents=True)
    cfg = {"env_id": "CartPole-v1", "algo": "onestep_q", "solve_score": 475.0}
    cfg.update(config or {})
    (d / "config.json").write_text(json.dumps(cfg))
    rows: list[tuple[float, list]] = []
    for step, t, worker, ret, length, eps in episodes:
        rows.append((t, ["episode", step, t, worker, ret, length, eps, "", ""]))
    for step, t, mean, std in evals:
        rows.append((t, ["eval", step, t, "", "", "", "", mean, std]))
    rows.sort(key=lambda r: r[0])  # appended in time order
    with (d / "metrics.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header if header is not None else METRICS_COLUMNS)
        w.writerows(r for _, r in rows)
    return d


def synthetic_episodes(n: int, seed: int = 0) -> list[tuple]:
    rng = np.random.default_rng(seed)
    step, t, out = 0, 0.0, []
    for i in range(n):
        length = int(rng.integers(10, 200))
        step += length
        t += length / 1000
        out.append((step, round(t, 3), i % 4, float(length), length, max(0.05, 1 - i / n)))
    return out


def assert_png(path: Path, shape=EXPECTED_SHAPE) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
    img = imread(path)
    assert img.shape[:2] == shape
    assert img.std() > 0  # not a blank canvas
    # The atomic write leaves no temporary files behind.
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")] == []


# ----------------------------------------------------------------- moving_average


def test_moving_average_hand_computed():
    np.testing.assert_allclose(moving_average(np.array([1, 2, 3, 4]), 2), [1, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(
        moving_average(np.array([3.0, 0.0, 6.0, 3.0, 9.0]), 3), [3, 1.5, 3, 3, 6]
    )


def test_moving_average_edge_cases():
    x = np.array([5.0, -1.0, 2.0])
    np.testing.assert_allclose(moving_average(x, 1), x)
    np.testing.assert_allclose(moving_average(x, 100), [5, 2, 2])  # window > len: running mean
    assert moving_average(np.array([]), 10).shape == (0,)
    assert moving_average(np.array([1, 2, 3], dtype=np.int64), 2).dtype == np.float64
    with pytest.raises(ValueError, match="window"):
        moving_average(x, 0)


def test_moving_average_matches_naive():
    x = np.random.default_rng(1).normal(size=500)
    w = 37
    naive = [x[max(0, i - w + 1) : i + 1].mean() for i in range(len(x))]
    np.testing.assert_allclose(moving_average(x, w), naive, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------- read_run


def test_read_run_separates_episode_and_eval_rows(tmp_path):
    d = make_run(
        tmp_path,
        "my_run",
        episodes=[(10, 0.5, 0, 10.0, 10, 1.0), (25, 1.0, 1, 15.0, 15, 0.9), (60, 2.5, 0, 35.0, 35, 0.8)],
        evals=[(20, 0.75, 100.0, 5.0), (60, 2.6, 200.0, 0.0)],
    )
    r = read_run(d)
    assert r.label == "my_run"  # no "label" in config -> directory name
    assert r.solve_score == 475.0
    assert r.env_id == "CartPole-v1" and r.algo == "onestep_q"
    np.testing.assert_array_equal(r.ep_step, [10, 25, 60])
    assert r.ep_step.dtype == np.int64
    np.testing.assert_allclose(r.ep_time, [0.5, 1.0, 2.5])
    np.testing.assert_allclose(r.ep_return, [10.0, 15.0, 35.0])
    np.testing.assert_array_equal(r.eval_step, [20, 60])
    np.testing.assert_allclose(r.eval_time, [0.75, 2.6])
    np.testing.assert_allclose(r.eval_mean, [100.0, 200.0])
    np.testing.assert_allclose(r.eval_std, [5.0, 0.0])


def test_read_run_label_and_null_solve_score(tmp_path):
    d = make_run(tmp_path, "x", config={"label": "n-step Q", "solve_score": None})
    r = read_run(d)
    assert r.label == "n-step Q"
    assert r.solve_score is None
    d2 = make_run(tmp_path, "y", config={"label": None})
    assert read_run(d2).label == "y"


def test_read_run_header_only(tmp_path):
    r = read_run(make_run(tmp_path))
    for arr in (r.ep_step, r.ep_time, r.ep_return, r.eval_step, r.eval_time, r.eval_mean, r.eval_std):
        assert arr.shape == (0,)


def test_read_run_tolerates_truncated_last_line_only(tmp_path):
    d = make_run(tmp_path, episodes=[(10, 0.5, 0, 10.0, 10, 1.0)])
    with (d / "metrics.csv").open("a") as fh:
        fh.write("episode,20,0.9,1,1")  # half-written final row (trainer still running)
    assert read_run(d).ep_return.tolist() == [10.0]

    with (d / "metrics.csv").open("a") as fh:
        fh.write("\nepisode,30,1.0,0,12.0,12,0.9,,\n")  # ... followed by more data: corrupt
    with pytest.raises(ValueError, match=r"line 3"):
        read_run(d)


def test_read_run_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_run(tmp_path / "nope")

    d = make_run(tmp_path, "no_metrics")
    (d / "metrics.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"metrics\.csv"):
        read_run(d)

    d = make_run(tmp_path, "no_config")
    (d / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        read_run(d)


def test_read_run_bad_header(tmp_path):
    d = make_run(tmp_path, header=["kind", "step", "time", "return"])
    with pytest.raises(ValueError, match=r"header.*wall_time.*expected"):
        read_run(d)


def test_read_run_bad_config(tmp_path):
    d = make_run(tmp_path)
    (d / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json.*not valid JSON"):
        read_run(d)


# ----------------------------------------------------------------- plotting


def test_plot_run_writes_png(tmp_path):
    d = make_run(
        tmp_path,
        episodes=synthetic_episodes(300),
        evals=[(s, t, 100.0 + i, 10.0) for i, (s, t, *_) in enumerate(synthetic_episodes(300)[::30])],
    )
    out = plot_run(d, window=20)
    assert out == d / "learning_curve.png"
    assert_png(out)
    # Overwriting an existing plot also works (os.replace onto an existing file).
    assert plot_run(d) == out
    assert_png(out)


def test_plot_runs_two_runs_creates_parent_dirs(tmp_path):
    a = make_run(tmp_path, "a", episodes=synthetic_episodes(200, 0), evals=[(500, 0.5, 50.0, 3.0)],
                 config={"label": "run A"})
    b = make_run(tmp_path, "b", episodes=synthetic_episodes(120, 1), config={"solve_score": 200.0})
    out = tmp_path / "figs" / "nested" / "compare.png"
    result = plot_runs([a, str(b)], out, window=10, title="comparison")
    assert result == out
    assert_png(out)


def test_plot_empty_and_partial_runs(tmp_path):
    # Header only: no episodes, no evals.
    assert_png(plot_run(make_run(tmp_path, "empty", config={"solve_score": None})))
    # Episodes but no evals; a single episode; evals but no episodes.
    assert_png(plot_run(make_run(tmp_path, "no_evals", episodes=synthetic_episodes(50))))
    assert_png(plot_run(make_run(tmp_path, "one_ep", episodes=synthetic_episodes(1))))
    assert_png(plot_run(make_run(tmp_path, "only_evals", evals=[(100, 1.0, 20.0, 2.0)])))


def test_plot_runs_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        plot_runs([], tmp_path / "x.png")
    with pytest.raises(FileNotFoundError):
        plot_runs([tmp_path / "missing"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    d = make_run(tmp_path, episodes=synthetic_episodes(20))
    out = plot_run(d)
    before = out.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_run(d)
    assert out.read_bytes() == before  # old PNG untouched
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "learning_curve.png", "metrics.csv"]
