"""Non-finite numbers: NaN observations or rewards from the environment, a diverging model.

Each stops the run (never a restart) with exit 1 and a message naming the source;
a checkpoint of non-finite weights is never written, an earlier good file is kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fault_helpers import describe, eval_json, load_final, run_all, train_args

from asyncdqn.config import resolve_config
from asyncdqn.errors import TrainingError
from asyncdqn.rundir.checkpoint import load_checkpoint
from asyncdqn.trainer import Trainer

# rmsprop's first step is lr * g / sqrt(0.01 g^2) = 10 lr: with lr 1e38 the weights overflow to inf.
DIVERGE = ["--lr", "1e38", "--optimizer", "rmsprop", "--loss", "mse", "--grad-clip", "none"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    root = tmp_path_factory.mktemp("numeric")
    jobs = {
        "obs": train_args("NaNObs-v0", root / "obs", "--max-steps", "100000"),  # process backend
        "reward": train_args("NaNReward-v0", root / "reward", "--max-steps", "100000", "--backend", "serial"),
        "diverge": train_args("Walk-v0", root / "diverge", "--max-steps", "100000", "--backend", "serial",
                              *DIVERGE),
    }
    return {k: (root / k, r) for k, r in run_all(jobs).items()}


@pytest.mark.parametrize(("name", "fragment"), [
    ("obs", "the environment returned a non-finite observation (NaN/inf)"),
    ("reward", "the environment returned a non-finite reward (NaN/inf)"),
    ("diverge", "the Q-network's parameters became non-finite: training diverged"),
])
def test_non_finite_values_stop_the_run_naming_the_source(runs: dict[str, tuple[Path, object]], name: str,
                                                         fragment: str) -> None:
    run_dir, r = runs[name]
    assert r.returncode == 1, describe(r)  # type: ignore[attr-defined]
    err = r.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err and "restarting" not in err, err  # numerical faults never restart
    last = err.strip().splitlines()[-1]
    assert last.startswith("asyncdqn: training failed: worker "), err
    assert fragment in last, err
    report = eval_json(run_dir)
    assert report["stop_reason"] == "failed" and fragment in report["error"]
    if name == "diverge":  # the weights are inf: no checkpoint of them
        assert "final checkpoint not written: the weights diverged" in err, err
        assert not (run_dir / "checkpoints" / "final.safetensors").exists()
    else:  # the check runs before the update: the weights are still good and are saved
        load_final(run_dir)


def test_non_finite_weights_never_replace_a_good_checkpoint(tmp_path: Path) -> None:
    cfg = resolve_config({"env_id": "fault_envs:Walk-v0", "hidden_sizes": [16], "workers": 1, "max_steps": 100,
                          "run_dir": str(tmp_path / "run"), "progress": False})
    trainer = Trainer(cfg)
    trainer._save_full("final.safetensors", 7)
    path = trainer.ckpt_dir / "final.safetensors"
    good = path.read_bytes()
    with torch.no_grad():
        next(trainer.shared.model.parameters())[0, 0] = float("nan")
    with pytest.raises(TrainingError, match="not finite"):
        trainer._save_full("final.safetensors", 8)
    assert path.read_bytes() == good
    assert load_checkpoint(path)[1]["step"] == 7
    assert not list(trainer.ckpt_dir.glob(".*.tmp"))


def test_runaway_q_values_are_divergence_even_while_finite() -> None:
    """The bound is 1000 x (max|r| / (1 - gamma) + 1), from the rewards the learner has seen."""
    import numpy as np

    from asyncdqn.errors import DivergedError
    from asyncdqn.learners.common import RunawayCheck

    def check(gamma: float, loss: str, **kw: object) -> RunawayCheck:
        return RunawayCheck(resolve_config({"env_id": "CartPole-v1", "gamma": gamma, "loss": loss,
                                            "max_steps": 10, **kw}), "worker 3")

    rewards = np.array([[0.5, -2.0], [1.0, 0.0]], dtype=np.float32)  # max |r| = 2
    huber = check(0.9, "huber")  # limit = 1000 * (2 / 0.1 + 1) = 21,000
    huber(20_999.0, rewards)
    with pytest.raises(DivergedError, match=r"worker 3: the TD loss \(2.1e\+04\) implies Q-values far beyond"):
        huber(21_001.0, rewards)
    huber(20_999.0, np.zeros(0, dtype=np.float32))  # the largest |r| seen so far still counts
    mse = check(0.9, "mse")  # squared error: the limit squared
    mse(21_000.0**2 * 0.999, rewards)
    with pytest.raises(DivergedError):
        mse(21_000.0**2 * 1.001, rewards)
    check(1.0, "huber")(1e30, rewards)  # gamma = 1: no bound on returns, no check
    check(0.9, "huber", runaway_check=False)(1e30, rewards)  # switched off
