"""SIGINT / SIGTERM to a training CLI: workers stop, the final checkpoint is written, exit 130 / 143.

The time from the signal to the process's exit is asserted < 10 s: that is the
requirement (a bound with wide margin, not a speed benchmark).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from fault_helpers import (
    alive,
    children,
    describe,
    episode_rows,
    eval_json,
    load_final,
    metrics_rows,
    send,
    start_cli,
    train_args,
    wait_for,
    worker_pids,
)

from asyncdqn.rundir.metrics import COLUMNS

EXIT_WITHIN_S = 10.0


def _check_stopped_run(run_dir: Path, proc_out: str) -> None:
    """Final checkpoint loads, is at least as recent as every metrics row; files agree."""
    rows = metrics_rows(run_dir)
    assert rows, proc_out
    assert all(len(r) == len(COLUMNS) and None not in r.values() for r in rows)  # no torn line
    _, meta = load_final(run_dir)
    assert meta["step"] >= max(int(r["step"]) for r in rows)
    report = eval_json(run_dir)
    assert report["stop_reason"] == "interrupted"
    assert report["total_steps"] == meta["step"] == sum(meta["per_worker_steps"])
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))  # no leftover temporary file


# SIGTERM is covered by the evaluation test below; each run costs seconds of start-up.
def _await_exit(proc: subprocess.Popen, sent: float) -> tuple[float, str, str]:
    """Wait (60 s at most, then kill) for the trainer to exit; seconds since `sent`, stdout, stderr."""
    try:
        proc.wait(timeout=60)
    finally:
        proc.kill()
    elapsed = time.monotonic() - sent
    out, err = proc.communicate()
    return elapsed, out, err


@pytest.mark.parametrize(("signals", "code"), [
    ((signal.SIGINT, signal.SIGINT), 130),  # a second Ctrl-C arrives during the shutdown
], ids=["SIGINT-twice"])
def test_signal_stops_training_cleanly(tmp_path: Path, signals: tuple[signal.Signals, ...], code: int) -> None:
    run_dir = tmp_path / "run"
    proc = start_cli(train_args("Walk-v0", run_dir, "--max-steps", "100000000"))
    wait_for(lambda: len(episode_rows(run_dir)) >= 5, 120, "training episodes", proc)
    workers = worker_pids(proc.pid)
    assert len(workers) == 2
    family = children(proc.pid)
    sent = send(proc, signals[0])
    for sig in signals[1:]:
        time.sleep(0.05)
        send(proc, sig)
    elapsed, out, err = _await_exit(proc, sent)
    print(f"{[s.name for s in signals]}: exit {proc.returncode} {elapsed:.2f} s after the signal")
    assert proc.returncode == code, describe(proc)
    assert elapsed < EXIT_WITHIN_S, f"took {elapsed:.1f} s"
    assert "Traceback" not in err, err
    assert not any(alive(pid) for pid in workers)
    _no_process_left(family)
    _check_stopped_run(run_dir, out + err)


def _no_process_left(family: list[int]) -> None:
    """Every child the trainer had (workers, the evaluator process, multiprocessing's resource
    tracker, which ends once its pipe from the trainer closes) is gone shortly after it exits."""
    end = time.monotonic() + 5.0
    while [pid for pid in family if alive(pid)] and time.monotonic() < end:
        time.sleep(0.1)
    assert not [pid for pid in family if alive(pid)], "processes left behind"


def test_sigterm_interrupts_a_running_evaluation(tmp_path: Path) -> None:
    """SlowEval: a 100-episode evaluation takes ~20 s in the evaluator process; SIGTERM must not wait for
    it, and leaves no process behind."""
    run_dir, mark = tmp_path / "run", tmp_path / "eval-started"
    args = train_args("SlowEval-v0", run_dir, "--max-steps", "100000000", "--eval-every-steps", "2000",
                      "--eval-episodes", "100")
    proc = start_cli(args, ASYNCDQN_FAULT_EVAL_MARK=str(mark))
    wait_for(mark.exists, 120, "the evaluation to start", proc)
    time.sleep(0.5)
    family = children(proc.pid)
    assert len(family) >= 3  # two workers and the evaluator process
    sent = send(proc, signal.SIGTERM)
    elapsed, out, err = _await_exit(proc, sent)
    print(f"SIGTERM during evaluation: exit {proc.returncode} {elapsed:.2f} s after the signal")
    assert proc.returncode == 143, describe(proc)
    assert elapsed < EXIT_WITHIN_S, f"took {elapsed:.1f} s"
    assert not [r for r in metrics_rows(run_dir) if r["kind"] == "eval"]  # the cut evaluation left no row
    _no_process_left(family)
    _check_stopped_run(run_dir, out + err)
    skipped = eval_json(run_dir)["evaluator"]["skipped"]
    assert skipped and skipped[-1]["reason"] == "training stopped first"


def test_signal_inside_finds_a_signal_that_a_native_call_wrapped() -> None:
    from asyncdqn.errors import TrainingError
    from asyncdqn.signals import Terminated, signal_inside

    term = Terminated()
    try:  # what Ray's Cython code hands back when our handler raised inside it
        try:
            raise term
        except Terminated as inner:
            raise SystemError("<cyfunction CoreWorker.wait> returned a result with an exception set") from inner
    except SystemError as wrapped:
        assert signal_inside(wrapped) is term
    try:  # converted by a backend's `except Exception: raise TrainingError(...) from None`
        try:
            raise SystemError("wrapped") from term
        except Exception:
            raise TrainingError("the parameter server did not start") from None
    except TrainingError as converted:
        assert signal_inside(converted) is term
    assert signal_inside(TrainingError("worker 0 died")) is None
    assert signal_inside(RuntimeError("x")) is None
    stop = KeyboardInterrupt()
    assert signal_inside(stop) is stop


def test_handlers_kept_undoes_handlers_installed_inside() -> None:
    from asyncdqn.signals import handlers_kept

    def ours(signum: int, frame: object) -> None: ...
    def theirs(signum: int, frame: object) -> None: ...

    before = signal.signal(signal.SIGTERM, ours)
    try:
        with handlers_kept():
            signal.signal(signal.SIGTERM, theirs)  # what ray.init does
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, before)
