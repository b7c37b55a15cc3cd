"""Shared helpers of the checkpoint / resume / file / disk fault tests (not a test module)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "asyncdqn.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore::DeprecationWarning"}
TIMEOUT = 300
# A short serial CartPole run: 2 workers x 4 envs x t_max 5 = 40 env steps per segment.
SMALL = ["--env", "CartPole-v1", "--backend", "serial", "--workers", "2", "--envs-per-worker", "4",
         "--hidden-sizes", "32", "32", "--eval-every-steps", "none", "--eval-episodes", "3", "--no-progress"]


def run_cli(args: list[Any], cwd: Path | None = None,
            prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [*(prefix or CLI), *[str(a) for a in args]]
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)


def run_all(jobs: dict[str, list[Any]],
            prefix: dict[str, list[str]] | None = None) -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {k: pool.submit(run_cli, a, None, (prefix or {}).get(k)) for k, a in jobs.items()}
        return {k: f.result() for k, f in futures.items()}


def describe(r: subprocess.CompletedProcess[str]) -> str:
    return f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


def assert_ok(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 0, describe(r)


def assert_user_error(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, no traceback, one `asyncdqn: error:` line containing every needle; returns it."""
    assert r.returncode == 2, describe(r)
    assert "Traceback" not in r.stderr, describe(r)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("asyncdqn: error:")]
    assert len(lines) == 1, describe(r)
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]
