"""The evaluation protocol off the trainer's loop: time bounds, snapshots and their skips,
verdict times, and the evaluator process (same results as in-process, restarted when killed)."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from asyncdqn.config import Config
from asyncdqn.evaluate import evaluate, summary
from asyncdqn.evaluator import (
    FINAL_EVAL_MIN_S,
    PIDS_HOOK,
    SLOW_HOOK,
    Evaluations,
    EvaluatorProcess,
    Request,
    final_eval_seconds,
)
from asyncdqn.model import QNetwork


class _Endless(gym.Env):
    """Never terminates, no time limit."""

    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action: Any):
        return np.zeros(2, np.float32), 1.0, False, False, {}


if "Endless-v0" not in gym.registry:
    gym.register(id="Endless-v0", entry_point=_Endless)


def _zeros(obs: np.ndarray) -> np.ndarray:
    return np.zeros((len(obs), 2), np.float32)


def test_an_episode_that_never_ends_is_cut_and_marked() -> None:
    t = time.monotonic()
    r = evaluate(_zeros, "Endless-v0", 3, seed=0, episode_seconds=0.3)
    assert time.monotonic() - t < 5.0
    assert not r.complete and r.episodes == 0 and r.requested == 3 and "longer than 0.3 s" in (r.cut or "")
    assert math.isnan(r.mean)
    d = r.to_dict()
    json.dumps(d, allow_nan=False)  # a cut evaluation is still valid JSON
    assert d["complete"] is False and d["mean"] is None and d["requested"] == 3
    assert summary(d) == "no episode finished (cut short: 0 of 3 episodes finished; an episode ran longer than 0.3 s)"


def test_a_deadline_keeps_the_finished_episodes_only() -> None:
    full = evaluate(_zeros, "CartPole-v1", 40, seed=3, parallel_envs=4)
    assert full.complete and full.to_dict()["complete"] is True and "requested" not in full.to_dict()
    calls = {"n": 0}

    def q(obs: np.ndarray) -> np.ndarray:  # the clock runs out after 30 batched steps
        calls["n"] += 1
        if calls["n"] == 30:
            time.sleep(1.2)
        return _zeros(obs)

    cut = evaluate(q, "CartPole-v1", 40, seed=3, parallel_envs=4, deadline=time.monotonic() + 1.0)
    assert not cut.complete and 0 < cut.episodes < 40 and cut.requested == 40
    # the same seeds, so the episodes that finished are the first ones of the full evaluation (by start order)
    assert set(cut.returns) <= set(full.returns)
    assert cut.mean == pytest.approx(np.mean(cut.returns))


def test_final_eval_bound_is_proportionate_unless_given() -> None:
    assert final_eval_seconds(Config(max_steps=1), 10.0) == FINAL_EVAL_MIN_S
    assert final_eval_seconds(Config(max_steps=1), 600.0) == 300.0
    assert final_eval_seconds(Config(max_steps=1, final_eval_seconds=7.5), 600.0) == 7.5


class _Runner:
    """A stand-in evaluator: free only when the test says so; results handed in by the test."""

    def __init__(self) -> None:
        from asyncdqn.backends.base import RestartBudget

        self.free, self.started, self.out = False, [], []
        self.restarts = RestartBudget(0)

    def ready(self) -> bool:
        return self.free and not self.started

    def busy(self) -> bool:
        return bool(self.started)

    def start(self, req: Request) -> None:
        self.started.append(req)

    def receive(self, step: int) -> tuple[list[tuple[Any, ...]], Request | None]:
        out, self.out = self.out, []
        for m in out:
            if m[0] == "idle":
                self.started = [r for r in self.started if r.id != m[1]]
        return out, None

    def close(self) -> None: ...


def _result(mean: float, episodes: int) -> Any:
    from asyncdqn.evaluate import EvalResult

    return EvalResult(mean, 0.0, (mean,) * episodes, (10,) * episodes)


def test_stale_snapshots_are_skipped_and_verdicts_keep_their_snapshot() -> None:
    cfg = Config(env_id="CartPole-v1", max_steps=1, solve_score=100.0, screen_episodes=2, eval_episodes=4)
    clock = {"now": 0.0}
    saved: list[tuple[int, dict[str, Any]]] = []
    ev = Evaluations(cfg, QNetwork(4, 2, (8,)), (4,), 2, lambda: clock["now"],
                     lambda w, step, best, stats: saved.append((step, dict(best))), lambda: None)
    runner = _Runner()
    ev.runner = runner  # type: ignore[assignment]
    w = {"x": np.zeros(1, np.float32)}
    ev.submit(100, 1.0, w)  # the evaluator is busy: it waits
    ev.submit(200, 2.0, w)  # replaces it
    ev.submit(300, 3.0, w)
    assert [s["step"] for s in ev.skipped] == [100, 200] and "step 300" in ev.skipped[-1]["reason"]
    assert ev.report()["skips"] == 2
    assert not ev.idle() and runner.started == []
    runner.free = True
    assert ev.poll(350) == []
    (req,) = runner.started
    assert (req.step, req.wall_s, req.rounds) == (300, 3.0, (1, 2))  # screen and full rounds, drawn now
    clock["now"] = 9.0
    runner.out = [("result", req.id, _result(150.0, 2))]  # the screen reached the score
    (screen,) = ev.poll(400)
    assert (screen.step, screen.snapshot_wall_s, screen.wall_s, screen.full, screen.solved) == (300, 3.0, 9.0,
                                                                                               False, False)
    clock["now"] = 12.0
    runner.out = [("result", req.id, _result(120.0, 4)), ("idle", req.id)]
    (full,) = ev.poll(500)
    assert full.full and full.solved and full.wall_s == 12.0 and full.step == 300
    # the full evaluation outranks the screen's higher mean
    assert [s for s, _ in saved] == [300, 300] and saved[-1][1]["mean"] == 120.0 and ev.best is not None
    assert ev.best["snapshot_wall_s"] == 3.0 and ev.best["wall_time_s"] == 12.0
    assert ev.idle() and ev.round == 2
    ev.submit(600, 13.0, w)
    ev.close()
    assert ev.skipped[-1] == {"step": 600, "snapshot_wall_s": 13.0, "reason": "training stopped first"}


def _weights(seed: int) -> dict[str, np.ndarray]:
    import torch

    torch.manual_seed(seed)
    return {k: v.detach().numpy().copy() for k, v in QNetwork(4, 2, (16,)).state_dict().items()}


def _wait(runner: EvaluatorProcess, step: int, timeout: float = 120.0) -> tuple[list[tuple[Any, ...]], Any]:
    end = time.monotonic() + timeout
    got: list[tuple[Any, ...]] = []
    while time.monotonic() < end:
        msgs, lost = runner.receive(step)
        got += msgs
        if lost is not None or any(m[0] == "idle" for m in got):
            return got, lost
        time.sleep(0.05)
    raise AssertionError(f"no answer from the evaluator process within {timeout} s: {got}")


def test_evaluator_process_matches_in_process_and_is_restarted_when_killed(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from asyncdqn.evaluator import q_of

    cfg = Config(env_id="CartPole-v1", max_steps=1, hidden_sizes=(16,), eval_episodes=6, max_restarts=1)
    pids = tmp_path / "pids"
    monkeypatch.setenv(PIDS_HOOK, str(pids))
    monkeypatch.setenv(SLOW_HOOK, "0.5")  # 3 s per evaluation: time to kill it in the middle
    runner = EvaluatorProcess(cfg, (4,), 2)
    try:
        end = time.monotonic() + 120
        while not runner.ready():
            assert time.monotonic() < end, "the evaluator process never became ready"
            runner.receive(0)
            time.sleep(0.05)
        w = _weights(1)
        req = Request(1, 1000, 5.0, w, (7,))
        expected = evaluate(q_of(QNetwork(4, 2, (16,)), w), "CartPole-v1", 6, cfg.seed, 7)
        runner.start(req)
        got, lost = _wait(runner, 1000)
        assert lost is None and [m[0] for m in got] == ["result", "idle"]
        assert got[0][2] == expected  # the same episodes, bit for bit
        # a snapshot with observation statistics (--normalize-obs) is played on normalized observations
        stats = (100.0, np.array([0.0, 0.5, 0.0, -0.5]), np.array([0.01, 0.04, 0.0025, 0.04]))
        normalized = evaluate(q_of(QNetwork(4, 2, (16,)), w, stats), "CartPole-v1", 6, cfg.seed, 7)
        assert normalized.returns != expected.returns  # these statistics change the policy's episodes
        runner.start(Request(2, 1500, 6.0, w, (7,), obs_stats=stats))
        got, lost = _wait(runner, 1500)
        assert lost is None and got[0][2] == normalized
        runner.start(req)
        first = int(pids.read_text().split()[0])
        time.sleep(1.0)
        os.kill(first, signal.SIGKILL)
        got, lost = _wait(runner, 2000)
        assert lost == req and runner.restarts.log == [
            {"worker": -1, "reason": "killed by signal SIGKILL", "step": 2000, "what": "evaluator process"}]
        end = time.monotonic() + 120
        while not runner.ready():  # a new process
            assert time.monotonic() < end, "no restarted evaluator process"
            runner.receive(2000)
            time.sleep(0.05)
        assert len(pids.read_text().split()) == 2
        runner.start(lost)
        got, _ = _wait(runner, 2000)
        assert got[0][2] == expected
    finally:
        runner.close()
    for pid in map(int, pids.read_text().split()):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


def test_evaluator_process_plays_the_runs_network_and_its_eval_epsilon() -> None:
    """The process builds the run's own network (a LayerNorm MLP here: a plain template could not load
    its snapshot, which once failed every Pong run with --layer-norm) and acts with --eval-epsilon."""
    import torch

    from asyncdqn.evaluator import q_of

    cfg = Config(env_id="CartPole-v1", max_steps=1, hidden_sizes=(16,), eval_episodes=6, layer_norm=True,
                 eval_epsilon=0.5)
    torch.manual_seed(3)
    model = QNetwork(4, 2, (16,), layer_norm=True)
    w = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    expected = evaluate(q_of(model, w), "CartPole-v1", 6, cfg.seed, 7, epsilon=0.5)
    assert expected != evaluate(q_of(model, w), "CartPole-v1", 6, cfg.seed, 7)  # epsilon 0.5 changes the games
    runner = EvaluatorProcess(cfg, (4,), 2)
    try:
        end = time.monotonic() + 120
        while not runner.ready():
            assert time.monotonic() < end, "the evaluator process never became ready"
            runner.receive(0)
            time.sleep(0.05)
        runner.start(Request(1, 1000, 5.0, w, (7,)))
        got, lost = _wait(runner, 1000)
        assert lost is None and [m[0] for m in got] == ["result", "idle"], got
        assert got[0][2] == expected
    finally:
        runner.close()


def test_cadence_steps_seconds_and_trigger_by_hand() -> None:
    from collections import deque

    cfg = Config(env_id="CartPole-v1", max_steps=1, eval_every_steps=1000, eval_every_seconds=30.0,
                 solve_score=10.0, solve_window=3)
    ev = Evaluations(cfg, QNetwork(4, 2, (8,)), (4,), 2, lambda: 0.0, lambda *a: None, lambda: None)
    runner = _Runner()
    ev.runner = runner  # type: ignore[assignment]
    ev.open(None, None, start_step=2500)  # a resumed run: the step cadence continues at 3000
    low, high = deque([0.0, 0.0, 0.0], maxlen=3), deque([10.0, 10.0, 10.0], maxlen=3)
    assert not ev.due(2999, 1.0, low)  # also schedules the first time check: 1 + 30 s
    assert ev.due(3000, 2.0, low) and ev.next_step == 4000
    assert not ev.due(3001, 2.5, deque([10.0, 10.0], maxlen=3))  # a window not yet full never triggers
    assert ev.due(3100, 3.0, high) and ev.next_trigger == 3100 + 10_000 // 4
    assert not ev.due(3200, 3.5, high)  # the trigger rests
    assert ev.due(5600, 4.0, high)  # the step cadence (4000) and the trigger again
    # seconds: 30 s after the evaluator went idle, never while it is busy
    ev.submit(5600, 4.0, {"x": np.zeros(1, np.float32)})
    assert not ev.due(5601, 100.0, low)  # busy (the snapshot waits): no time check scheduled
    runner.free = True
    ev.poll(5602)
    (req,) = runner.started
    runner.out = [("result", req.id, _result(1.0, 2)), ("idle", req.id)]
    ev.poll(5603)
    assert not ev.due(5604, 110.0, low) and ev.next_time == 140.0
    assert ev.due(5605, 140.0, low)


def test_a_running_normalization_run_evaluates_its_snapshots_with_their_statistics(tmp_path: Path) -> None:
    """--normalize-obs running with worker processes: the evaluator process plays each snapshot on
    observations normalized with the statistics read with its weights, and best.safetensors keeps
    both. The run stops at its first verdict (solve score 0): seed round 1, played by the process."""
    import asyncdqn
    from asyncdqn.envs.normalize import stats_from_tensors
    from asyncdqn.evaluator import q_of
    from asyncdqn.rundir.checkpoint import load_checkpoint

    run = tmp_path / "run"
    res = asyncdqn.train({"env_id": "CartPole-v1", "backend": "process", "workers": 1, "envs_per_worker": 2,
                          "hidden_sizes": [16], "normalize_obs": "running", "solve_score": 0.0,
                          "eval_every_steps": 1000, "eval_episodes": 5, "screen_episodes": 5,
                          "max_steps": 10_000_000, "max_seconds": 120.0, "checkpoint_every": None,
                          "progress": False, "seed": 3, "run_dir": str(run)})
    assert res.solved and res.evaluator is not None and res.evaluator["runner"] == "process", res.evaluator
    assert res.solve_eval is not None and res.best_eval is not None and res.best_eval["step"] == res.steps_to_solve
    tensors, _ = load_checkpoint(run / "checkpoints" / "best.safetensors")
    stats = stats_from_tensors(tensors)
    assert stats is not None and stats[0] >= 500  # the rows of the ~1000 steps before the snapshot
    template = QNetwork(4, 2, (16,))
    weights = {k: tensors["model." + k].numpy() for k in template.state_dict()}  # in the network's order
    again = evaluate(q_of(template, weights, stats), "CartPole-v1", 5, 3, 1)
    assert list(again.returns) == res.solve_eval["returns"], (again.returns, res.solve_eval)
