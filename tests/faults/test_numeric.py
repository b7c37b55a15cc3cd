"""Non-finite numbers: NaN observations or rewards from the environment, a diverging model.

Each stops the run (never a restart) with exit 1 and a message naming the source;
a checkpoint of non-finite weights is never written, an earlier good file is kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import describe, eval_json, load_final, run_all, train_args

from asyncdqn.checkpoint import load_checkpoint
from asyncdqn.config import resolve_config
from asyncdqn.errors import TrainingError
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
        assert "final checkpoint not written" in err and "is not finite" in err, err
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
