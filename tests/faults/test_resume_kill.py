"""kill -9 of a real trainer: the lock does not outlive it, resume loses at most about one
checkpoint interval, and a damaged or half-written newest checkpoint is never picked."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ckpt_util import CLI, ENV, SMALL, assert_ok, describe, run_all
from fault_helpers import manifest_steps, reaped

from asyncdqn.errors import RunDirError
from asyncdqn.rundir import layout as rundir

EVERY = 2000


def _metric_steps(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(r[1]) for r in csv.reader(f) if r and r[0] in ("episode", "eval") and len(r) == 10]


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("kill")
    run = root / "RUN"
    args = ["train", *SMALL, "--max-steps", "100000000",
            "--checkpoint-every", EVERY, "--run-dir", run]
    proc = subprocess.Popen([*CLI, *map(str, args)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    with reaped(proc):
        deadline = time.monotonic() + 150
        while len(manifest_steps(run)) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no two checkpoints within 150 s"
            time.sleep(0.1)
        # A second trainer on the same run while the first lives: refused by the lock
        # (taken here in the test process: flock works across processes).
        try:
            rundir.RunLock(run)
            second: str | None = None
        except RunDirError as exc:
            second = str(exc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    steps = manifest_steps(run)
    last_logged = max(_metric_steps(run))
    assert (run / ".lock").exists()  # left behind by the dead trainer
    # RUN2: as if killed while writing the next checkpoint after damaging the newest one:
    # a truncated temp file, a half file the manifest does not name, and the newest
    # manifest entry no longer matching its digest.
    run2 = root / "RUN2"
    shutil.copytree(run, run2)
    ck2 = run2 / "checkpoints"
    newest = ck2 / f"ckpt-{steps[-1]:012d}.safetensors"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    (ck2 / f".ckpt-{steps[-1] + EVERY:012d}.safetensors.k1ll3d.tmp").write_bytes(data[:1000])
    (ck2 / f"ckpt-{steps[-1] + EVERY:012d}.safetensors").write_bytes(data[:3000])
    results = run_all({
        "resume": ["train", "--resume", run, "--max-steps", steps[-1] + 1000],
        "resume2": ["train", "--resume", run2, "--max-steps", steps[-1] + 1000],
    })
    return {"root": root, "run": run, "run2": run2, "steps": steps, "last_logged": last_logged,
            "second": second, "pid": proc.pid, "killed_rc": proc.returncode, **results}


def test_second_trainer_on_a_live_run_is_refused(killed: dict) -> None:
    msg = killed["second"]
    assert msg is not None and "in use by another trainer" in msg and str(killed["run"]) in msg, msg
    assert f"(pid {killed['pid']})" in msg


def test_resume_after_kill_9_continues_from_the_newest_checkpoint(killed: dict) -> None:
    r, steps = killed["resume"], killed["steps"]
    assert killed["killed_rc"] == -signal.SIGKILL
    assert_ok(r)  # the stale lock file did not block it
    assert f"from ckpt-{steps[-1]:012d}.safetensors (step {steps[-1]:,}" in r.stderr, describe(r)
    # at most one interval (plus the steps of one poll of the trainer loop) was lost
    lost = killed["last_logged"] - steps[-1]
    assert lost < EVERY + 1000, (killed["last_logged"], steps)
    out = json.loads((killed["run"] / "eval.json").read_text())
    assert steps[-1] + 1000 <= out["total_steps"] < steps[-1] + 1000 + 200
    with open(killed["run"] / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert sum(r[0] == "kind" for r in rows) == 1
    walls = [float(r[2]) for r in rows[1:]]
    assert walls == sorted(walls)


def test_damaged_newest_checkpoint_is_skipped_for_the_previous_one(killed: dict) -> None:
    r, steps = killed["resume2"], killed["steps"]
    assert_ok(r)
    assert "warning: skipping checkpoint" in r.stderr and "sha256 does not match" in r.stderr, describe(r)
    assert f"from ckpt-{steps[-2]:012d}.safetensors (step {steps[-2]:,}" in r.stderr, describe(r)
    left = sorted(p.name for p in (killed["run2"] / "checkpoints").iterdir())
    assert not [n for n in left if n.endswith(".tmp")], left  # debris of the killed write removed
