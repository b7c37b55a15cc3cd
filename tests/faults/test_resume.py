"""Exact resume (serial backend, in process): tensors, counters, optimizer steps, metrics, refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from asyncdqn.backends.serial import SerialBackend
from asyncdqn.errors import CheckpointError, ConfigError, RunDirError, TrainingError
from asyncdqn.learners.common import worker_env_seeds
from asyncdqn.rundir import layout as rundir
from asyncdqn.rundir.checkpoint import CheckpointStore, load_checkpoint
from asyncdqn.trainer import Trainer, TrainResult, resume, train

SEGMENT = 2 * 5  # envs per worker x t_max: env steps per optimizer step, per worker
BASE = dict(env_id="CartPole-v1", backend="serial", workers=2, envs_per_worker=2, t_max=5, hidden_sizes=[16, 16],
            eval_every_steps=None, eval_episodes=2, solve_score=None, progress=False, checkpoint_every=1000,
            target_update_steps=300)
N = 2000


def _train(path: Path, **kw: Any) -> TrainResult:
    return train({**BASE, "run_dir": str(path), **kw})


def _final_meta(run: Path) -> dict[str, Any]:
    return load_checkpoint(run / "checkpoints" / "final.safetensors")[1]


def _rows(run: Path) -> list[list[str]]:
    with open(run / rundir.METRICS, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("resume")
    straight = _train(root / "straight", max_steps=2 * N)
    first = _train(root / "split", max_steps=N)
    rows_before = _rows(root / "split")
    trainer = Trainer.resume(root / "split", {"max_steps": 2 * N})
    ckpt = CheckpointStore(root / "split" / "checkpoints").latest()
    state = {  # the restored state, read before the resumed run changes it
        "model": {k: v.clone() for k, v in trainer.shared.model.state_dict().items()},
        "target": {k: v.clone() for k, v in trainer.shared.target.model.state_dict().items()},
        "optim": trainer.shared.optimizer.state_tensors(),
        "counter": trainer.shared.counter.value, "per_worker": trainer.shared.counter.per_worker(),
        "optim_steps": trainer.shared.optimizer.step_count, "cfg": trainer.cfg,
    }
    resumed = trainer.run()
    return {"root": root, "straight": straight, "first": first, "resumed": resumed, "ckpt": ckpt,
            "state": state, "rows_before": rows_before}


def test_resume_restores_every_tensor_bit_exactly(runs: dict[str, Any]) -> None:
    ckpt, state = runs["ckpt"], runs["state"]
    assert ckpt.meta["step"] == N
    for prefix in ("model", "target", "optim"):
        saved = {k[len(prefix) + 1:]: v for k, v in ckpt.tensors.items() if k.startswith(prefix + ".")}
        assert saved and set(saved) == set(state[prefix]), prefix
        for k, v in saved.items():
            assert state[prefix][k].dtype == v.dtype and torch.equal(state[prefix][k], v), (prefix, k)
    # target differs from the online net (it was synced at a multiple of 300, not at N)
    assert not all(torch.equal(state["model"][k], state["target"][k]) for k in state["model"])


def test_resume_restores_counters_and_optimizer_step(runs: dict[str, Any]) -> None:
    state, meta = runs["state"], runs["ckpt"].meta
    assert state["counter"] == N and sum(state["per_worker"]) == N
    assert state["per_worker"] == meta["per_worker_steps"] == [N // 2, N // 2]
    # serial backend: one optimizer step per worker segment
    assert state["optim_steps"] == meta["optimizer_steps"] == N // SEGMENT
    assert state["cfg"].resume_count == 1 and state["cfg"].max_steps == 2 * N


def test_resumed_run_ends_with_the_same_counters_as_an_uninterrupted_one(runs: dict[str, Any]) -> None:
    straight, resumed, root = runs["straight"], runs["resumed"], runs["root"]
    assert runs["first"].total_steps == N
    assert resumed.total_steps == straight.total_steps == 2 * N
    a, b = _final_meta(root / "straight"), _final_meta(root / "split")
    assert a["per_worker_steps"] == b["per_worker_steps"] == [N, N]
    assert a["optimizer_steps"] == b["optimizer_steps"] == 2 * N // SEGMENT
    # the target network kept its cadence: syncs at every multiple of 300 crossed in total
    assert b["target_last_sync_step"] == a["target_last_sync_step"] == (2 * N // 300) * 300
    assert b["target_syncs"] == a["target_syncs"] == 1 + 2 * N // 300  # the count too: the start + one each
    assert b["resume_count"] == 1 and a["resume_count"] == 0
    cfg = json.loads((root / "split" / rundir.CONFIG).read_text())
    assert cfg["max_steps"] == 2 * N and cfg["resumes"][0]["at_step"] == N
    assert cfg["resumes"][0]["changed"] == {"max_steps": 2 * N}
    # checkpoints on the global step grid (the serial backend polls every 2000 steps, so 3000 is
    # taken at 4000, which is also the exit checkpoint)
    assert [e["step"] for e in CheckpointStore(root / "split" / "checkpoints").entries()] == [2000, 4000]


def test_metrics_csv_is_appended_without_a_second_header(runs: dict[str, Any]) -> None:
    rows = _rows(runs["root"] / "split")
    before = runs["rows_before"]
    assert sum(r[0] == "kind" for r in rows) == 1
    assert rows[: len(before)] == before  # the first session's rows untouched
    new = rows[len(before):]
    assert new and all(r[0] == "episode" and int(r[1]) > N - SEGMENT for r in new if r[0] == "episode")
    walls = [float(r[2]) for r in rows[1:]]
    assert walls == sorted(walls), "wall time restarted at 0 after the resume"
    assert max(int(r[1]) for r in rows[1:]) <= 2 * N + SEGMENT


def test_resumed_workers_get_fresh_seeds() -> None:
    for i in range(3):
        first = worker_env_seeds(0, i, 4)
        assert worker_env_seeds(0, i, 4, 0) == first
        assert len(set(first) & set(worker_env_seeds(0, i, 4, 1))) == 0
        assert worker_env_seeds(0, i, 4, 1) != worker_env_seeds(0, i, 4, 2)


# ------------------------------------------------------------- refusals


@pytest.fixture
def short_run(tmp_path: Path) -> Path:
    _train(tmp_path / "run", max_steps=400)
    return tmp_path / "run"


def test_refuses_changing_a_training_option(short_run: Path) -> None:
    with pytest.raises(ConfigError, match=r"--lr cannot change when resuming.*--max-steps"):
        Trainer.resume(short_run, {"lr": 0.1, "max_steps": 800})
    # repeating the same value is fine, and the lock was released by the refusal
    lr = json.loads((short_run / rundir.CONFIG).read_text())["lr"]
    Trainer.resume(short_run, {"lr": lr, "env_id": "CartPole-v1", "max_steps": 800}).close()


def test_resumes_a_run_with_one_worker_per_core(tmp_path: Path) -> None:
    # --workers 0 is stored in config.json as the worker count it resolved to; the
    # checkpoint's fingerprint must agree with that (it once recorded 0 and was refused).
    _train(tmp_path / "run", workers=0, max_steps=400)
    assert json.loads((tmp_path / "run" / rundir.CONFIG).read_text())["workers"] >= 1
    result = resume(tmp_path / "run", max_steps=800)
    assert result.total_steps >= 800



def test_resumes_an_older_checkpoint_that_recorded_workers_0(tmp_path: Path) -> None:
    # Before the fix, checkpoints of a --workers 0 run stored the fingerprint with workers 0.
    from asyncdqn.rundir.resume import _digest, fingerprinted, matches_fingerprint

    _train(tmp_path / "run", workers=0, max_steps=400)
    cfg = rundir.load_run(tmp_path / "run").config
    legacy = _digest({**fingerprinted(cfg), "workers": 0})
    assert matches_fingerprint(legacy, cfg)
    assert not matches_fingerprint(_digest({**fingerprinted(cfg), "workers": 5}), cfg)
    assert not matches_fingerprint(None, cfg)


def test_checkpoints_from_before_later_options_still_resume(short_run: Path) -> None:
    # Options added later (--average-steps, --lr-anneal-steps, --lr-end) at their "as
    # before" values leave the fingerprint as it was: older checkpoints keep matching.
    from asyncdqn.rundir.resume import fingerprint, fingerprinted

    cfg = rundir.load_run(short_run).config
    assert not {"average_steps", "lr_anneal_steps", "lr_end"} & set(fingerprinted(cfg))
    assert fingerprinted(cfg.replace(average_steps=1000))["average_steps"] == 1000
    assert fingerprint(cfg.replace(lr_end=1e-5)) != fingerprint(cfg)
    raw = json.loads((short_run / rundir.CONFIG).read_text())  # config.json of an older version
    for k in ("average_steps", "lr_anneal_steps", "lr_end"):
        del raw[k]
    (short_run / rundir.CONFIG).write_text(json.dumps(raw))
    assert resume(short_run, max_steps=800).total_steps == 800


def test_refuses_a_step_budget_already_reached(short_run: Path) -> None:
    with pytest.raises(ConfigError, match="step 400"):
        resume(short_run)  # config.json still says max_steps 400


def test_refuses_an_edited_config(short_run: Path) -> None:
    path = short_run / rundir.CONFIG
    raw = json.loads(path.read_text())
    raw["gamma"] = 0.5
    path.write_text(json.dumps(raw))
    expected = r"differs from the configuration.*gamma: checkpoint 0\.99 vs config.json 0\.5"
    with pytest.raises(CheckpointError, match=expected):
        Trainer.resume(short_run, {"max_steps": 800})


def test_refuses_a_run_locked_by_a_live_trainer(short_run: Path) -> None:
    holder = rundir.RunLock(short_run)
    with pytest.raises(RunDirError, match="in use by another trainer"):
        Trainer.resume(short_run, {"max_steps": 800})
    holder.release()
    result = resume(short_run, max_steps=800)
    assert result.total_steps == 800


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_poll = SerialBackend.poll

    def poll_then_poison(self: SerialBackend, timeout: float) -> list:  # type: ignore[type-arg]
        out = real_poll(self, timeout)
        if self.shared.counter.value >= 4000:  # as if an update blew the weights up
            with torch.no_grad():
                next(self.shared.model.parameters()).fill_(float("nan"))
        return out

    monkeypatch.setattr(SerialBackend, "poll", poll_then_poison)
    with pytest.raises(TrainingError, match="diverged") as info:
        _train(tmp_path / "run", max_steps=50_000, checkpoint_every=1000)
    ckpts = tmp_path / "run" / "checkpoints"
    latest = CheckpointStore(ckpts).latest()
    assert latest.skipped == [] and 2000 <= latest.meta["step"] <= 4000
    assert latest.path.name in str(info.value)
    assert all(torch.isfinite(t).all() for t in latest.tensors.values() if t.is_floating_point())
    assert not (ckpts / "final.safetensors").exists()  # never written with NaN weights
    assert not [p for p in ckpts.iterdir() if p.name.endswith(".tmp")]
    # and the run can be resumed from it
    assert resume(tmp_path / "run", max_steps=latest.meta["step"] + 200).total_steps >= latest.meta["step"] + 200


def test_disk_errors_warn_then_the_final_checkpoint_failure_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    real_save = CheckpointStore.save

    def save(self: CheckpointStore, step: int, *a: Any, **k: Any) -> Path:
        if step > 2000:
            raise OSError(30, "Read-only file system")
        return real_save(self, step, *a, **k)

    monkeypatch.setattr(CheckpointStore, "save", save)
    with pytest.raises(RunDirError) as info:
        _train(tmp_path / "run", max_steps=8000, checkpoint_every=1000)
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if "warning: checkpoint at step" in ln]
    # serial polls every 2000 steps: periodic ones at 4000 and 6000 fail, one warning each,
    # training goes on; the exit checkpoint at 8000 fails and stops the run
    assert len(warnings) == 2, err
    assert "Read-only file system" in warnings[0] and "ckpt-000000004000.safetensors" in warnings[0]
    assert "ckpt-000000002000.safetensors kept" in warnings[0]
    msg = str(info.value)
    assert "cannot write the final checkpoint" in msg and "Read-only file system" in msg
    assert str(tmp_path / "run" / "checkpoints") in msg and "ckpt-000000002000.safetensors is kept" in msg
    monkeypatch.undo()
    assert CheckpointStore(tmp_path / "run" / "checkpoints").latest().meta["step"] == 2000
    # training did reach the budget despite the failed checkpoints
    rows = _rows(tmp_path / "run")
    assert max(int(r[1]) for r in rows[1:]) > 7000


def test_episode_decay_epsilon_continues_after_resume(tmp_path: Path) -> None:
    """episode-decay epsilons are not a function of the step: each worker's is checkpointed."""
    run = tmp_path / "run"
    _train(run, max_steps=2000, eps_schedule="episode-decay", eps_decay=0.95)
    saved = CheckpointStore(run / "checkpoints").latest().meta["worker_epsilons"]
    assert len(saved) == 2 and all(e is not None and e < 0.5 for e in saved), saved
    rows_before = len(_rows(run))
    trainer = Trainer.resume(run, {"max_steps": 2400})
    assert list(trainer.cfg.resume_epsilons) == saved
    trainer.run()
    new = [r for r in _rows(run)[rows_before:] if r[0] == "episode"]
    first = {}
    for r in new:
        first.setdefault(int(r[3]), float(r[6]))
    assert first and all(first[w] <= saved[w] + 1e-4 for w in first), (first, saved)  # not back at 1.0
