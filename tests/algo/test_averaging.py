"""Polyak averaging of the weights: the update rule by hand, and what the trainer does with it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from asyncdqn.algo.averaging import WeightAverage, average_weight
from asyncdqn.model import build_model
from asyncdqn.rundir.checkpoint import load_checkpoint
from asyncdqn.trainer import Trainer, train


def _state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2, 3), value), "b": torch.full((3,), value)}


def test_weight_of_a_new_sample_hand_computed() -> None:
    assert average_weight(0, 100.0) == 0.0
    assert average_weight(-5, 100.0) == 0.0  # a counter read twice, or out of order
    assert average_weight(100, 100.0) == pytest.approx(1 - math.exp(-1))
    assert average_weight(10**9, 100.0) == pytest.approx(1.0)


def test_update_moves_towards_the_weights_by_that_fraction() -> None:
    avg = WeightAverage(_state(0.0), 100.0, step=1000)
    avg.update(_state(2.0), 1100)
    assert torch.allclose(avg.state["w"], torch.full((2, 3), 2 * (1 - math.exp(-1)), dtype=torch.float64))
    avg.update(_state(2.0), 1100)  # no steps since: unchanged
    assert avg.state["w"][0, 0].item() == pytest.approx(2 * (1 - math.exp(-1)))
    assert avg.step == 1100


def test_result_does_not_depend_on_how_often_it_is_updated() -> None:
    once = WeightAverage(_state(0.0), 50.0, step=0)
    once.update(_state(1.0), 300)
    often = WeightAverage(_state(0.0), 50.0, step=0)
    for step in range(10, 301, 10):
        often.update(_state(1.0), step)
    assert torch.allclose(once.state["b"], often.state["b"], atol=1e-12)


def test_weights_are_an_independent_copy_in_the_models_dtype() -> None:
    avg = WeightAverage(_state(1.0), 10.0, step=0)
    out = avg.weights(_state(0.0))
    assert out["w"].dtype == torch.float32
    out["w"].add_(5.0)
    assert avg.state["w"][0, 0].item() == 1.0


def test_time_constant_must_be_positive() -> None:
    with pytest.raises(ValueError, match="time constant"):
        WeightAverage(_state(0.0), 0.0, step=0)


# ------------------------------------------------------------ in the trainer

BASE = dict(env_id="CartPole-v1", backend="serial", workers=1, envs_per_worker=2, t_max=5, hidden_sizes=[16, 16],
            eval_every_steps=None, eval_episodes=2, solve_score=None, progress=False, checkpoint_every=1000,
            target_update_steps=300, seed=3)


def _initial_weights() -> dict[str, torch.Tensor]:
    return build_model(4, 2, (16, 16), 3).state_dict()


def test_an_average_with_a_huge_time_constant_keeps_the_initial_weights(tmp_path: Path) -> None:
    # With tau = 1e12 steps the average cannot move from the initial network in 2,000 steps:
    # what the run evaluates, returns and saves as `average.` is that network, not the online one.
    result = train({**BASE, "run_dir": str(tmp_path / "run"), "max_steps": 2000, "average_steps": 10**12})
    tensors, _ = load_checkpoint(tmp_path / "run" / "checkpoints" / "final.safetensors")
    init = _initial_weights()
    for k, v in init.items():
        assert torch.allclose(tensors[f"average.{k}"].float(), v, atol=1e-6)
        assert not torch.allclose(tensors[f"model.{k}"], v)  # the online network did learn
    best, _ = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.safetensors")
    for k, v in init.items():  # best.safetensors holds the evaluated (averaged) policy
        assert torch.allclose(best[f"model.{k}"], v, atol=1e-6)
    assert result.final_eval is not None
    # `evaluate` / `render` on the final checkpoint load the averaged policy too
    from asyncdqn.policy import load_policy

    policy = load_policy(tmp_path / "run", "final")
    assert torch.allclose(policy.network.state_dict()["q.0.weight"], init["q.0.weight"], atol=1e-6)


def test_without_averaging_checkpoints_hold_no_average(tmp_path: Path) -> None:
    train({**BASE, "run_dir": str(tmp_path / "run"), "max_steps": 500})
    tensors, _ = load_checkpoint(tmp_path / "run" / "checkpoints" / "final.safetensors")
    assert not any(k.startswith("average.") for k in tensors)


def test_resume_restores_the_average(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train({**BASE, "run_dir": str(run), "max_steps": 2000, "average_steps": 500})
    saved, meta = load_checkpoint(run / "checkpoints" / "final.safetensors")
    trainer = Trainer.resume(run, {"max_steps": 3000})
    try:
        assert trainer.average is not None and trainer.average.step == meta["step"]
        for k, v in trainer.average.state.items():
            assert torch.equal(v, saved[f"average.{k}"])
    finally:
        trainer.close()


def test_evaluation_ticks_once_per_batched_step() -> None:
    # The trainer's average keeps following the workers while an evaluation runs.
    from asyncdqn.evaluate import evaluate

    calls = []
    result = evaluate(lambda x: x[:, :2] * 0.0, "CartPole-v1", 3, seed=0, tick=lambda: calls.append(1))
    assert len(calls) == max(result.lengths)  # all three episodes run side by side
