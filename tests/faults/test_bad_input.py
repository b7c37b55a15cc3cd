"""Bad input never hangs: too many workers / envs / parameters are refused at once (exit 2, one line
naming the bound, no run directory written); workers that never become ready stop the run (exit 1)
after --start-timeout, with nothing left running."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import alive, describe, run_cli

from asyncdqn.config import resolve_config
from asyncdqn.errors import ConfigError
from asyncdqn.model import QNetwork
from asyncdqn.resources import (
    ENV_BYTES,
    TRAINER_RSS_BYTES,
    WORKER_RSS_BYTES,
    check_resources,
    estimate_memory,
    mlp_params,
    worker_bound,
)

GB = 2**30


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bad-input")
    pids = root / "pids.txt"
    jobs = {
        "workers": ["train", "--env", "CartPole-v1", "--workers", "1000", "--max-steps", "10",
                    "--run-dir", str(root / "workers")],
        "envs": ["train", "--env", "CartPole-v1", "--envs-per-worker", "5000", "--max-steps", "10",
                 "--run-dir", str(root / "envs")],
        "network": ["train", "--env", "CartPole-v1", "--hidden-sizes", "200000", "200000", "--max-steps", "10",
                    "--run-dir", str(root / "network")],
        "buffer": ["train", "--env", "CartPole-v1", "--algo", "dqn", "--buffer-size", "3000000000",
                   "--max-steps", "10", "--run-dir", str(root / "buffer")],
        "slow": ["train", "--env", "fault_envs:SlowStart-v0", "--workers", "2", "--envs-per-worker", "1",
                 "--hidden-sizes", "8", "--start-timeout", "8", "--max-steps", "1000", "--no-progress",
                 "--eval-episodes", "2", "--run-dir", str(root / "slow")],
    }
    def timed(args: list[str]) -> tuple[Any, float]:
        t0 = time.monotonic()
        r = run_cli(args, ASYNCDQN_FAULT_PIDS=str(pids))
        return r, time.monotonic() - t0

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(timed, args) for name, args in jobs.items()}
        done = {name: f.result() for name, f in futures.items()}
    results = {name: r for name, (r, _) in done.items()}
    times = {name: round(t, 1) for name, (_, t) in done.items()}
    print("exit codes and seconds:", {name: (r.returncode, times[name]) for name, r in results.items()})
    return {"root": root, "results": results, "pids": pids, "times": times}


@pytest.mark.parametrize("name, fragment", [
    ("workers", "workers: 1000 is above this machine's bound of"),
    ("envs", "envs_per_worker: 5000 is above the bound of 1024"),
    ("network", "memory: this run needs about"),
    ("buffer", "replay buffer of 3,000,000,000 transitions"),
])
def test_refused_with_one_line_exit_2(cli: dict[str, Any], name: str, fragment: str) -> None:
    r = cli["results"][name]
    assert r.returncode == 2, describe(r)
    assert fragment in r.stderr, describe(r)
    assert r.stderr.strip().count("\n") == 0, describe(r)  # one line
    assert not (cli["root"] / name).exists()  # refused before any file was written


def test_workers_never_ready_stop_the_run(cli: dict[str, Any]) -> None:
    r = cli["results"]["slow"]
    assert r.returncode == 1, describe(r)
    assert "not ready after 8 s (--start-timeout)" in r.stderr, describe(r)
    report = json.loads((cli["root"] / "slow" / "eval.json").read_text())
    assert report["stop_reason"] == "failed" and "not ready" in report["error"]
    # Every process started for this run carries our unique $ASYNCDQN_FAULT_PIDS in its environment:
    # the workers (blocked in the constructor, or still importing on a loaded machine) must all be gone.
    deadline = time.monotonic() + 10  # PDEATHSIG / SIGKILL delivery is asynchronous
    while (left := _processes_with_env("ASYNCDQN_FAULT_PIDS", str(cli["pids"]))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes outlived the run: {left}"
    blocked = [int(x) for x in cli["pids"].read_text().split()] if cli["pids"].exists() else []
    assert not any(alive(p) for p in blocked)


def _processes_with_env(key: str, value: str) -> list[int]:
    want = f"{key}={value}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if want in (d / "environ").read_bytes().split(b"\0") and alive(int(d.name)):
                found.append(int(d.name))
        except OSError:
            continue
    return found


def test_worker_bound_math() -> None:
    # cores bind: 4 x 2 = 8 < memory's (24 GB - trainer) / 250 MB
    n, why = worker_bound(2, 24 * GB)
    assert n == 8 and "4 x 2 CPU cores" in why
    # memory binds: 2 GB free holds (2 GB - 500 MB) // 250 MB = 6 workers, below 4 x 16 cores
    n, why = worker_bound(16, 2 * GB)
    assert n == (2 * GB - TRAINER_RSS_BYTES) // WORKER_RSS_BYTES == 6 and "available" in why
    cfg = resolve_config({"env_id": "CartPole-v1", "workers": 9, "max_steps": 10})
    with pytest.raises(ConfigError, match="bound of 8"):
        check_resources(cfg, 4, 2, cores=2, available=24 * GB)
    check_resources(cfg.replace(workers=8), 4, 2, cores=2, available=24 * GB)  # at the bound: accepted


def test_memory_estimate_counts_every_copy() -> None:
    sizes = (64, 32)
    assert mlp_params(4, 2, sizes) == sum(p.numel() for p in QNetwork(4, 2, sizes).parameters())
    cfg = resolve_config({"env_id": "CartPole-v1", "workers": 3, "envs_per_worker": 5, "hidden_sizes": sizes,
                          "optimizer": "adam", "max_steps": 10})
    est = estimate_memory(cfg, 4, 2, 3)
    p = mlp_params(4, 2, sizes)
    assert est.network_bytes == 4 * p * (2 + 2 + 2 * 3)  # model, target, 2 Adam moments, 3 x (grads + target)
    assert est.worker_bytes == 3 * WORKER_RSS_BYTES + 15 * ENV_BYTES
    assert est.total_bytes == est.network_bytes + est.worker_bytes + TRAINER_RSS_BYTES
    with pytest.raises(ConfigError, match="memory"):
        check_resources(cfg, 4, 2, cores=2, available=est.total_bytes - 1)
    assert check_resources(cfg, 4, 2, cores=2, available=est.total_bytes) == est
    # RMSProp keeps one moment
    assert estimate_memory(cfg.replace(optimizer="rmsprop"), 4, 2, 3).network_bytes == 4 * p * (2 + 1 + 6)
    dqn = resolve_config({"env_id": "CartPole-v1", "algo": "dqn", "buffer_size": 1000, "max_steps": 10})
    assert estimate_memory(dqn, 4, 2, 1).buffer_bytes == 1000 * (2 * 4 * 4 + 8 + 4 + 2)


def test_start_timeout_is_validated_and_resumable() -> None:
    from asyncdqn.rundir.resume import RESUMABLE

    with pytest.raises(ConfigError, match="start_timeout"):
        resolve_config({"env_id": "CartPole-v1", "start_timeout": 0, "max_steps": 10})
    assert "start_timeout" in RESUMABLE
