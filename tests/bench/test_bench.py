"""Smoke tests of `asyncdqn bench throughput|solve` (timings are not asserted: they belong to benchmarks)
and exact tests of the solve summary arithmetic."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def test_bench_throughput_smoke(tmp_path: Path) -> None:
    out = tmp_path / "tp.json"
    proc = subprocess.run(
        [sys.executable, "-m", "asyncdqn.cli", "bench", "throughput", "--env", "CartPole-v1", "--algos", "n-step-q",
         "--max-workers", "1", "--seconds", "0.5", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,  # 4 rows, 4 process start-ups: slow when shared
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    kinds = [(r["vector"], r["kind"], r["workers"]) for r in report["rows"]]
    # both steppers (envpool is installed by `make test`), each trainer row after its own ceiling
    assert kinds == [("gymnasium", "ceiling", 1), ("gymnasium", "n-step-q", 1),
                     ("envpool", "ceiling", 1), ("envpool", "n-step-q", 1)]
    assert all(r["steps"] > 0 and r["seconds"] > 0 and r["cpu_seconds"] > 0 for r in report["rows"])
    for ceiling, trainer in (report["rows"][0:2], report["rows"][2:4]):
        assert trainer["ratio"] == trainer["steps_per_second"] / ceiling["steps_per_second"]
        assert abs(trainer["cpu_ratio"] - trainer["steps_per_cpu_second"] / ceiling["steps_per_cpu_second"]) < 1e-12
    assert "of ceiling" in proc.stdout and "envpool" in proc.stdout
    mem = report["rows"][1]["memory"]
    assert mem["model_in_shared_memory"] is True  # one copy of the model, in shared memory
    assert len(mem["workers"]) == 1 and mem["workers"][0]["peak_rss_mb"] > 0 and mem["total_pss_mb"] > 0


def test_bench_throughput_envpool_refuses_env_it_lacks(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "asyncdqn.cli", "bench", "throughput", "--env", "CartPole-v0",
                           "--vector", "envpool", "--seconds", "0.1"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "EnvPool has no supported counterpart of 'CartPole-v0'" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_rejects_unknown_algo(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "asyncdqn.cli", "bench", "throughput", "--algos", "nope"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown algorithm 'nope'" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ bench solve
from asyncdqn.bench.solve import Protocol, format_summary, summarize  # noqa: E402


def _record(contender: str, seed: int, solved_at: float | None, steps: int, final: float) -> dict:
    return {"contender": contender, "seed": seed, "solved": solved_at is not None, "time_to_solve_s": solved_at,
            "steps_to_solve": steps if solved_at is not None else None, "total_steps": steps,
            "wall_time_s": solved_at or 600.0, "steps_per_second": steps / (solved_at or 600.0),
            "final_eval": {"mean": final, "std": 10.0, "episodes": 100}, "evals": [],
            "peak_rss": {"main_mb": 300.0, "largest_worker_mb": 250.0}, "workers": 2}


def test_summarize_counts_unsolved_runs_as_the_budget() -> None:
    records = [
        _record("asyncdqn", 0, 40.0, 1_000_000, 210.0),
        _record("asyncdqn", 1, 60.0, 1_500_000, 220.0),
        _record("asyncdqn", 2, None, 9_000_000, 150.0),  # unsolved: counts as 600 s
        _record("asyncdqn-envpool", 0, 30.0, 1_000_000, 210.0),
        _record("asyncdqn-envpool", 1, 20.0, 1_000_000, 210.0),
        _record("sb3-dqn", 0, 500.0, 250_000, 205.0),
        _record("sb3-dqn", 1, None, 300_000, 100.0),
    ]
    s = summarize(records, budget_s=600.0)
    a, b = s["asyncdqn"], s["sb3-dqn"]
    assert (a["runs"], a["solved"]) == (3, 2)
    assert a["time_s"]["each"] == [40.0, 60.0, 600.0]
    assert a["time_s"]["median"] == 60.0 and a["time_s"]["max"] == 600.0
    assert a["steps"]["median"] == 1_500_000  # unsolved: all the steps it took
    assert abs(a["final_greedy"]["mean"] - 580.0 / 3) < 1e-9
    assert b["time_s"]["median"] == 550.0  # (500 + 600) / 2
    assert abs(b["asyncdqn_speedup"] - 550.0 / 60.0) < 1e-12
    assert abs(b["asyncdqn_envpool_speedup"] - 550.0 / 25.0) < 1e-12
    assert "asyncdqn_speedup" not in a and "seed-compat" not in s
    assert "asyncdqn_speedup" not in s["asyncdqn-envpool"]  # ours are not compared with each other
    table = format_summary(s, Protocol())
    assert "| asyncdqn | 2/3 | 60.0 |" in table and "| 9.2× | 22.0× |" in table


def test_bench_solve_smoke(tmp_path: Path) -> None:
    """All four contenders run end to end under the protocol (tiny budget, numbers not asserted)."""
    out = tmp_path / "solve"
    cmd = [sys.executable, "-m", "asyncdqn.cli", "bench", "solve", "--env", "CartPole-v1", "--seeds", "1",
           "--budget", "3", "--check-every", "1", "--eval-episodes", "3", "--screen-episodes", "2",
           "--set", "hidden_sizes=[32, 16]", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["summary"]) == {"asyncdqn", "asyncdqn-envpool", "seed-compat", "sb3-dqn"}
    for name in ("asyncdqn", "asyncdqn-envpool", "seed-compat", "sb3-dqn"):
        rec = json.loads((out / f"{name}-seed0.json").read_text())
        assert rec["protocol"]["budget_s"] == 3.0 and rec["final_eval"]["episodes"] == 3
        assert rec["peak_rss"]["main_mb"] > 0
    ours = json.loads((out / "asyncdqn-seed0.json").read_text())
    assert ours["overrides"] == {"hidden_sizes": [32, 16]}  # --set reaches the asyncdqn contender only
    assert json.loads((out / "asyncdqn-seed0" / "config.json").read_text())["hidden_sizes"] == [32, 16]
    assert json.loads((out / "seed-compat-seed0" / "config.json").read_text())["hidden_sizes"] == [128, 128]
    envpool_run = json.loads((out / "asyncdqn-envpool-seed0" / "config.json").read_text())
    assert envpool_run["vector"] == "envpool" and envpool_run["hidden_sizes"] == [32, 16]
    assert json.loads((out / "asyncdqn-seed0" / "config.json").read_text())["vector"] == "gymnasium"
    assert (out / "solve_curves.png").stat().st_size > 0 and "| asyncdqn |" in (out / "summary.md").read_text()
    # A second invocation finds every run done and only re-summarizes.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert again.returncode == 0 and "running" not in again.stdout


@pytest.mark.parametrize("args, message", [
    (["--contenders", "nope"], "unknown contender 'nope'"),
    (["--budget", "0"], "--budget: must be > 0"),
    (["--seeds", "0"], "--seeds"),
    (["--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
])
def test_bench_solve_rejects_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "asyncdqn.cli", "bench", "solve", "--out", str(tmp_path / "o"), *args],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_bench_solve_rejects_invalid_preset_overrides(tmp_path: Path) -> None:
    for bad, message in ((["--set", "no_such_field=1"], "unknown configuration key(s): no_such_field"),
                         (["--set", "lr=-1"], "lr: must be > 0"), (["--set", "lr"], "expected FIELD=VALUE")):
        proc = subprocess.run([sys.executable, "-m", "asyncdqn.cli", "bench", "solve", "--out", str(tmp_path / "o"),
                               *bad], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()  # refused before any run


def test_bench_solve_ray_cluster_contender_joins_a_running_cluster(tmp_path: Path) -> None:
    """asyncdqn-ray-cluster: the bench starts a one-node Ray cluster outside the run's clock and
    the run joins it (--ray-address), on the ray backend; the cluster is gone afterwards."""
    pytest.importorskip("ray")
    out = tmp_path / "solve"
    cmd = [sys.executable, "-m", "asyncdqn.cli", "bench", "solve", "--env", "CartPole-v1", "--seeds", "1",
           "--contenders", "asyncdqn-ray-cluster", "--budget", "20", "--check-every", "1", "--eval-episodes", "3",
           "--screen-episodes", "2", "--set", "hidden_sizes=[16]", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "asyncdqn-ray-cluster-seed0" / "config.json").read_text())
    assert config["backend"] == "ray" and config["hidden_sizes"] == [16]
    host, _, port = config["ray_address"].rpartition(":")
    assert host and port.isdigit()
    rec = json.loads((out / "asyncdqn-ray-cluster-seed0.json").read_text())
    assert rec["total_steps"] > 0 and rec["final_eval"]["episodes"] == 3
    with socket.socket() as s:  # the cluster's GCS port is closed again
        assert s.connect_ex((host, int(port))) != 0


def test_bench_throughput_set_reaches_every_row_and_the_report(tmp_path: Path) -> None:
    out = tmp_path / "tp.json"
    proc = subprocess.run(
        [sys.executable, "-m", "asyncdqn.cli", "bench", "throughput", "--env", "CartPole-v1", "--algos", "n-step-q",
         "--max-workers", "1", "--seconds", "0.3", "--vector", "gymnasium", "--set", "envs_per_worker=3",
         "--set", "t_max=7", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["overrides"] == {"envs_per_worker": 3, "t_max": 7}
    assert [r["envs_per_worker"] for r in report["rows"]] == [3, 3]  # the ceiling and the trainer row


@pytest.mark.parametrize(("item", "message"), [
    ("workers=4", "--set: workers set by the bench itself"),
    ("no_such_option=1", "unknown configuration key(s): no_such_option"),
    ("t_max=0", "t_max"),
])
def test_bench_throughput_refuses_a_bad_set_before_measuring(tmp_path: Path, item: str, message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "asyncdqn.cli", "bench", "throughput", "--env", "CartPole-v1",
                           "--set", item, "--out", str(tmp_path / "tp.json")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "tp.json").exists()
