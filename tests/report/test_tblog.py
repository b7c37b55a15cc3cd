"""--tensorboard: a tiny training run writes an event file with the expected scalars."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

import chain_env  # noqa: F401  (registers the test environments; tests/conftest.py puts it on sys.path)
from asyncdqn.report.tblog import TB_DIR
from asyncdqn.trainer import train
from chain_env import CHAIN_ID


def load_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    files = list((run_dir / TB_DIR).glob("events.out.tfevents.*"))
    assert len(files) == 1
    acc = EventAccumulator(str(files[0]))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def metrics_rows(run_dir: Path, kind: str) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["kind"] == kind]


@pytest.mark.parametrize("algo", ["n-step-q", "dqn"])
def test_tensorboard_scalars_match_metrics(tmp_path, algo):
    run = tmp_path / algo
    train({"env_id": CHAIN_ID, "algo": algo, "backend": "serial", "workers": 1, "envs_per_worker": 2,
           "hidden_sizes": [8], "max_steps": 600, "eval_every_steps": 200, "eval_episodes": 2,
           "learning_starts": 50, "batch_size": 8, "buffer_size": 200, "progress": False,
           "tensorboard": True, "run_dir": str(run)})
    sc = load_scalars(run)
    assert {"train/episode_return", "train/epsilon", "train/loss", "eval/mean", "eval/std"} <= set(sc)
    episodes = metrics_rows(run, "episode")
    # every training episode is logged, same step and return (chain: return 3 per episode)
    assert [s for s, _ in sc["train/episode_return"]] == [int(r["step"]) for r in episodes]
    np.testing.assert_allclose([v for _, v in sc["train/episode_return"]], 3.0)
    np.testing.assert_allclose([v for _, v in sc["train/epsilon"]], [float(r["epsilon"]) for r in episodes], atol=1e-4)
    assert all(math.isfinite(v) and v >= 0 for _, v in sc["train/loss"])
    evals = metrics_rows(run, "eval")
    assert [(s, round(v, 3)) for s, v in sc["eval/mean"]] == [(int(r["step"]), round(float(r["eval_mean"]), 3))
                                                             for r in evals]


def test_tensorboard_rates():
    from asyncdqn.report.tblog import TensorBoardLog

    class Rec:
        def __init__(self):
            self.points = []

        def add_scalar(self, tag, value, step):
            self.points.append((tag, value, step))

    log = TensorBoardLog.__new__(TensorBoardLog)
    log.writer, log._last = Rec(), None
    log.rates(0, 0.0, [0, 0])
    log.rates(100, 0.5, [60, 40])  # under the interval: nothing written
    log.rates(400, 2.0, [300, 100])
    assert log.writer.points == [("speed/steps_per_s", 200.0, 400), ("speed/worker_0", 150.0, 400),
                                 ("speed/worker_1", 50.0, 400)]
