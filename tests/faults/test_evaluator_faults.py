"""The trainer never waits on an evaluation: checkpoints keep their interval while a
deliberately slow evaluation runs (kill -9 loses at most one interval plus one poll), a
killed evaluator process is restarted while training goes on, Ctrl-C leaves no process
behind, and a policy that never ends an episode cannot hold a run past its time bounds."""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

from fault_helpers import (
    alive,
    children,
    describe,
    episode_rows,
    eval_json,
    manifest_steps,
    metrics_rows,
    reaped,
    run_cli,
    send,
    start_cli,
    train_args,
    wait_for,
)

from asyncdqn.evaluator import PIDS_HOOK, SLOW_HOOK

EVERY = 2000
# Workers slowed to ~1 ms per step of their 2 envs (~4000 steps/s for two): one 0.2 s poll of the
# trainer's loop is ~800 steps; allowed: a poll stretched to ~1 s by a loaded machine. An evaluation
# in the trainer's loop (> 10 s here) would cost ~40,000.
SLOWED = ["--env-kwargs", '{"step_sleep": 0.0005}']
POLL_STEPS = 4000


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _max_step(run: Path) -> int:
    return max((int(r["step"]) for r in metrics_rows(run)), default=0)


def test_kill_9_during_a_slow_evaluation_loses_at_most_one_interval(tmp_path: Path) -> None:
    """Every evaluation takes > 10 s (the hook sleeps 2 s per episode; the evaluator is never idle: a
    snapshot is due every 1000 steps). Checkpoints go on meanwhile; kill -9 loses < one interval + a poll."""
    run, pids, mark = tmp_path / "run", tmp_path / "pids", tmp_path / "eval-started"
    proc = start_cli(train_args("SlowEval-v0", run, "--max-steps", "100000000", "--eval-every-steps", "1000",
                                "--checkpoint-every", str(EVERY), "--keep-checkpoints", "50", *SLOWED),
                     **{SLOW_HOOK: "2", PIDS_HOOK: str(pids), "ASYNCDQN_FAULT_EVAL_MARK": str(mark)})
    with reaped(proc):
        wait_for(mark.exists, 120, "the first evaluation to start", proc)
        before = len(manifest_steps(run))
        wait_for(lambda: len(manifest_steps(run)) >= before + 3, 60,
                 "three checkpoints while evaluations run", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    evaluator = _pids(pids)
    assert len(evaluator) == 1
    wait_for(lambda: not alive(evaluator[0]), 10, "the evaluator to die with its trainer")
    steps = manifest_steps(run)
    lost = _max_step(run) - steps[-1]
    assert lost < EVERY + POLL_STEPS, (lost, steps)
    # the checkpoints kept their interval: no gap of more than one interval plus a poll
    gaps = [b - a for a, b in itertools.pairwise(steps)]
    assert max(gaps) < EVERY + POLL_STEPS, steps
    r = run_cli(["train", "--resume", str(run), "--max-steps", str(steps[-1] + 1000)])
    assert r.returncode == 0, describe(r)
    assert f"from ckpt-{steps[-1]:012d}.safetensors (step {steps[-1]:,}" in r.stderr, describe(r)


def test_a_killed_evaluator_is_restarted_training_goes_on_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    run, pids = tmp_path / "run", tmp_path / "pids"
    proc = start_cli(train_args("Walk-v0", run, "--max-steps", "100000000", "--eval-every-steps", "1000"),
                     **{SLOW_HOOK: "1", PIDS_HOOK: str(pids)})
    with reaped(proc):
        wait_for(lambda: _pids(pids) and episode_rows(run), 120, "the evaluator process and training", proc)
        time.sleep(2.0)  # it is evaluating by now (5 s per snapshot)
        os.kill(_pids(pids)[0], signal.SIGKILL)
        at_kill = _max_step(run)
        wait_for(lambda: len(_pids(pids)) >= 2, 60, "a restarted evaluator", proc)
        wait_for(lambda: _max_step(run) > at_kill + 5 * EVERY, 60, "training to go on", proc)
        wait_for(lambda: any(r["kind"] == "eval" for r in metrics_rows(run)), 60,
                 "an evaluation by the restarted evaluator", proc)
        family = children(proc.pid)
        assert _pids(pids)[-1] in family and len(family) >= 3  # two workers and the evaluator (at least)
        sent = send(proc, signal.SIGINT)
        proc.wait(timeout=60)
        elapsed = time.monotonic() - sent
        out, err = proc.communicate()
    assert proc.returncode == 130, f"{out}\n{err}"
    print(f"SIGINT with a restarted evaluator: exit {elapsed:.1f} s after the signal")
    assert elapsed < 20.0 and "Traceback" not in err, err  # test_signals.py holds the 10 s bound; this is loaded
    time.sleep(1.0)  # the resource tracker ends when its pipe from the trainer closes
    assert not [pid for pid in family if alive(pid)], "processes left behind"
    report = eval_json(run)
    (restart,) = report["evaluator"]["restarts"]
    assert restart["what"] == "evaluator process" and "SIGKILL" in restart["reason"]
    assert report["stop_reason"] == "interrupted"


def test_a_policy_that_never_ends_an_episode_cannot_hold_the_run(tmp_path: Path) -> None:
    """NeverEnds-v0: no evaluation episode ever finishes. --max-seconds ends training on time,
    the periodic evaluations are cut by --eval-episode-seconds, the final one by --final-eval-seconds,
    and eval.json says so."""
    run = tmp_path / "run"
    t = time.monotonic()
    r = run_cli(train_args("NeverEnds-v0", run, "--max-seconds", "6", "--eval-every-steps", "2000",
                           "--eval-episode-seconds", "1", "--final-eval-seconds", "2", "--json"))
    took = time.monotonic() - t
    assert r.returncode == 0, describe(r)
    report = eval_json(run)
    # wall_time_s is taken once the workers stopped: they get 5 s, then SIGKILL and 2 s to go (workers
    # still compiling their kernels on a loaded machine use all of it)
    assert report["stop_reason"] == "max_seconds" and report["wall_time_s"] < 6 + 5 + 2 + 1, report["wall_time_s"]
    final = report["final_eval"]
    assert final["complete"] is False and final["episodes"] == 0 and final["requested"] == 5, final
    assert final["mean"] is None
    best = report["best_eval"]  # nothing finished: the final weights stand as the best, marked incomplete
    assert best["complete"] is False and (run / "checkpoints" / "best.safetensors").exists()
    cut = [row for row in metrics_rows(run) if row["kind"] == "eval"]
    assert cut and all(row["eval_episodes"] == "0" for row in cut)  # periodic ones, cut after 1 s each
    print(f"never-ending episodes: the CLI returned after {took:.1f} s (6 s of training)")


def test_a_serial_run_evaluates_in_process_within_max_seconds(tmp_path: Path) -> None:
    import asyncdqn

    t = time.monotonic()
    res = asyncdqn.train(env_id="fault_envs:NeverEnds-v0", backend="serial", workers=1, envs_per_worker=2,
                         hidden_sizes=[8], max_seconds=3.0, eval_every_steps=500, eval_episodes=3,
                         eval_episode_seconds=60.0, final_eval_seconds=1.0, progress=False,
                         run_dir=str(tmp_path / "run"))
    assert res.stop_reason == "max_seconds" and res.wall_time_s < 3.0 + 1.0, res.wall_time_s
    assert time.monotonic() - t < 30
    assert res.evaluator is not None and res.evaluator["runner"] == "in-process"
    assert res.final_eval["complete"] is False and res.final_eval["cut"] == "time bound of the evaluation reached"
