"""Helpers for the fault tests: CLI subprocesses on the fault environments, child processes, files.

Training CLI runs start a real trainer with real worker processes; each pays a few
seconds of interpreter + torch start-up, so tests that need several independent
runs start them together (`run_all`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from asyncdqn.model import QNetwork
from asyncdqn.rundir.checkpoint import load_checkpoint, load_weights

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "asyncdqn.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
       "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)}
TIMEOUT = 240.0
HIDDEN = 16
# A small, fast run on a fault environment: 2 workers x 2 envs, no periodic evaluation.
SMALL = ["--workers", "2", "--envs-per-worker", "2", "--hidden-sizes", str(HIDDEN), "--eval-every-steps", "none",
         "--eval-episodes", "5", "--no-progress"]


def train_args(env: str, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--env", f"fault_envs:{env}", *SMALL, "--run-dir", str(run_dir), *extra]


def start_cli(args: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *args], env={**ENV, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def run_cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env={**ENV, **env}, capture_output=True, text=True, timeout=TIMEOUT)


def run_all(jobs: dict[str, list[str]], parallel: int = 3) -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {name: pool.submit(run_cli, args) for name, args in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


def describe(r: Any) -> str:
    return f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


def wait_for(cond: Callable[[], Any], timeout: float, what: str, proc: subprocess.Popen[str] | None = None) -> Any:
    """Poll `cond` until truthy; fail (killing `proc`) after `timeout` seconds or if `proc` exits."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process exited ({proc.returncode}) while waiting for {what}\n{out}\n{err}")
        time.sleep(0.1)
    if proc is not None:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"timed out waiting for {what}\n{out}\n{err}")
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie (a reaped-later dead child counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Live child processes of `pid` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            out.append(int(d.name))
    return out


def worker_pids(pid: int) -> list[int]:
    """Children of the trainer `pid` that are asyncdqn workers (spawned, running worker_main)."""
    pids = []
    for child in children(pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if "spawn_main" in cmd:
            pids.append(child)
    return pids


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "metrics.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def episode_rows(run_dir: Path) -> list[dict[str, str]]:
    return [r for r in metrics_rows(run_dir) if r["kind"] == "episode"]


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Yields `proc`; on the way out (a failed wait or assertion included) kills and reaps it if it
    still runs, so that no test leaves a trainer behind."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def manifest_steps(run: Path) -> list[int]:
    """The steps of the checkpoints the run's manifest lists ([] while it is missing or being replaced)."""
    try:
        return [e["step"] for e in json.loads((run / "checkpoints" / "manifest.json").read_text())["checkpoints"]]
    except (OSError, ValueError, KeyError):
        return []


def eval_json(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "eval.json").read_text())


def load_final(run_dir: Path, obs_dim: int = 2, n_actions: int = 2) -> tuple[QNetwork, dict[str, Any]]:
    """The final checkpoint, loaded into a network of the test shape (fails if missing or corrupt)."""
    tensors, meta = load_checkpoint(run_dir / "checkpoints" / "final.safetensors")
    model = QNetwork(obs_dim, n_actions, (HIDDEN,))
    load_weights(model, tensors, "model.", "final")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    return model, meta


def send(proc: subprocess.Popen[str], sig: signal.Signals) -> float:
    """Send `sig`; returns the monotonic time it was sent."""
    t = time.monotonic()
    os.kill(proc.pid, sig)
    return t
