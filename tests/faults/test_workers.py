"""Worker failures: restarts within --max-restarts, locks held by a killed worker, parent death."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from fault_helpers import (
    ENV,
    alive,
    describe,
    episode_rows,
    eval_json,
    load_final,
    run_cli,
    start_cli,
    train_args,
    wait_for,
    worker_pids,
)

from asyncdqn import train
from asyncdqn.backends.base import SPAWN, OwnedLock
from asyncdqn.backends.process import HOLD_LOCK_HOOK


def _hold(lock: OwnedLock, ready: object) -> None:  # runs in a spawned child
    with lock:
        ready.set()  # type: ignore[attr-defined]
        time.sleep(600)


def test_owned_lock_of_a_killed_holder_is_broken() -> None:
    lock, ready = OwnedLock(), SPAWN.Event()
    p = SPAWN.Process(target=_hold, args=(lock, ready), daemon=True)
    p.start()
    try:
        assert ready.wait(60)
        assert lock.holder == p.pid
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
        assert not lock._lock.acquire(timeout=0.3)  # the hazard: a dead process still holds it
        assert lock.break_if_held_by(p.pid)
        assert lock._lock.acquire(timeout=1.0)  # free again
        lock._lock.release()
        assert lock.holder == 0
        assert not lock.break_if_held_by(p.pid)  # nothing left to break
        with lock:  # and usable as before
            assert lock.holder == os.getpid()
    finally:
        p.kill()


def _small(tmp_path: Path, name: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "env_id": "fault_envs:RaiseOnce-v0", "workers": 2, "envs_per_worker": 4, "hidden_sizes": [16],
        "max_steps": 6000, "eval_every_steps": None, "eval_episodes": 3, "progress": False,
        "run_dir": str(tmp_path / name),
    }
    base.update(kw)
    return base


def test_environment_exception_restarts_the_serial_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flag = tmp_path / "raise-once"
    flag.touch()
    monkeypatch.setenv("ASYNCDQN_FAULT_FLAG", str(flag))
    r = train(_small(tmp_path, "serial", backend="serial", max_steps=6000))
    assert not flag.exists()  # the fault fired
    assert len(r.worker_restarts) == 1, r.worker_restarts
    restart = r.worker_restarts[0]
    assert "injected environment failure" in restart["reason"]
    assert r.stop_reason == "max_steps" and r.total_steps >= 6000  # the run went on to its budget
    later = [row for row in episode_rows(r.run_dir)
             if int(row["worker"]) == restart["worker"] and int(row["step"]) > restart["step"]]
    assert len(later) >= 5  # the rebuilt worker (same index) kept training
    load_final(r.run_dir)
    assert eval_json(r.run_dir)["worker_restarts"] == r.worker_restarts


def test_restarts_are_bounded(tmp_path: Path) -> None:
    """A deterministic failure: 1 restart, then the run stops with exit 1 and a clear message."""
    run_dir = tmp_path / "run"
    r = run_cli(train_args("RaiseAlways-v0", run_dir, "--workers", "1", "--max-restarts", "1",
                           "--max-steps", "100000"))
    assert r.returncode == 1, describe(r)
    assert r.stderr.count("restarting it") == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("asyncdqn: training failed: worker 0 failed: RuntimeError: injected"), r.stderr
    assert "giving up after 1 restart(s) (--max-restarts 1)" in last
    assert "Traceback" not in r.stderr
    report = eval_json(run_dir)
    assert report["stop_reason"] == "failed" and len(report["worker_restarts"]) == 1
    assert "giving up" in report["error"]
    _, meta = load_final(run_dir)  # the last checkpoint is intact
    assert meta["step"] == report["total_steps"]


def test_killed_lock_holder_and_env_exception_restart_process_workers(tmp_path: Path) -> None:
    """Worker 0 takes all three shared locks and sleeps; we SIGKILL it. Nobody may hang on the
    locks (worker 1 waits on them). Then one env.step raises in a worker. Both failed workers
    are restarted (same index) and train on; Ctrl-C ends the run."""
    run_dir, pid_file, flag = tmp_path / "run", tmp_path / "holder.pid", tmp_path / "raise-once"
    args = train_args("RaiseOnce-v0", run_dir, "--max-steps", "100000000", "--target-update-steps", "200")
    proc = start_cli(args, **{HOLD_LOCK_HOOK: f"0:counter,target,optimizer:{pid_file}",
                              "ASYNCDQN_FAULT_FLAG": str(flag)})
    holder = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 120, "the lock holder", proc))
    time.sleep(1.0)  # let worker 1 run into the held locks
    os.kill(holder, signal.SIGKILL)
    flag.touch()  # the next env.step of any worker raises, once
    killed = time.monotonic()
    wait_for(lambda: not flag.exists(), 120, "the injected env failure", proc)
    print(f"env failure {time.monotonic() - killed:.1f} s after the kill")
    after = max([int(r["step"]) for r in episode_rows(run_dir)], default=0) + 500

    def both_workers_past(step: int) -> bool:
        rows = episode_rows(run_dir)
        return all(any(int(r["worker"]) == w and int(r["step"]) > step for r in rows) for w in (0, 1))

    wait_for(lambda: both_workers_past(after), 120, "both workers training again", proc)
    print(f"both workers training {time.monotonic() - killed:.1f} s after the kill")
    os.kill(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    finally:
        proc.kill()
    _out, err = proc.communicate()
    assert proc.returncode == 130, describe(proc)
    assert "worker 0 (pid" in err and "died holding the step counter and target network and optimizer lock; " \
        "released" in err, err
    assert "restarting it (2/3 restarts used)" in err, err
    report = eval_json(run_dir)
    restarts = report["worker_restarts"]
    assert len(restarts) == 2, restarts
    assert restarts[0]["worker"] == 0 and "SIGKILL" in restarts[0]["reason"]
    assert "RuntimeError: injected environment failure" in restarts[1]["reason"]
    for r in restarts:  # each restarted worker finished episodes after its restart
        assert any(int(row["worker"]) == r["worker"] and int(row["step"]) > r["step"] + 500
                   for row in episode_rows(run_dir)), r
    load_final(run_dir)


def test_workers_exit_when_the_trainer_is_killed(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start_cli(train_args("Walk-v0", run_dir, "--max-steps", "100000000"))
    try:
        wait_for(lambda: len(episode_rows(run_dir)) >= 5, 120, "training episodes", proc)
        workers = worker_pids(proc.pid)
        assert len(workers) == 2
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(10)
        while any(alive(p) for p in workers) and time.monotonic() - killed < 5.0:
            time.sleep(0.05)
        gone_after = time.monotonic() - killed
        print(f"workers gone {gone_after:.2f} s after SIGKILL of the trainer")
        assert not [p for p in workers if alive(p)], f"workers still alive {gone_after:.1f} s after"
    finally:
        proc.kill()
        proc.communicate()


assert ENV  # (imported for its PYTHONPATH side: spawned children find fault_envs)


def test_a_signal_inside_a_compiled_call_stops_a_serial_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM raised while a numba kernel runs comes back from it wrapped, as SystemError "...
    returned a result with an exception set" caused by our Terminated. The serial backend must stop
    the run as interrupted, not count a crash and restart the worker (it did: the run then went on
    to its step budget and reported "max_steps")."""
    import asyncdqn.backends.serial as serial
    from asyncdqn.signals import Terminated

    real, calls = serial.make_learner, {"n": 0}

    def make(*args: object, **kwargs: object) -> object:
        learner = real(*args, **kwargs)  # type: ignore[arg-type]
        segment = learner.run_segment

        def run_segment() -> None:
            calls["n"] += 1
            if calls["n"] == 40:
                try:
                    raise Terminated()
                except Terminated as sig:
                    raise SystemError("CPUDispatcher(<function record_and_act>) returned a result with an "
                                      "exception set") from sig
            segment()

        learner.run_segment = run_segment  # type: ignore[method-assign]
        return learner

    monkeypatch.setattr(serial, "make_learner", make)
    run_dir = tmp_path / "run"
    with pytest.raises(Terminated):
        train({"env_id": "CartPole-v1", "backend": "serial", "workers": 2, "envs_per_worker": 2, "t_max": 5,
               "hidden_sizes": [16], "max_steps": 100_000, "eval_every_steps": None, "eval_episodes": 2,
               "solve_score": None, "progress": False, "run_dir": str(run_dir)})
    report = eval_json(run_dir)
    assert report["stop_reason"] == "interrupted" and report["worker_restarts"] == [], report
    assert report["total_steps"] < 100_000
