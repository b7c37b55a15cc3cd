"""--normalize-obs end to end: shared statistics across workers (and processes), the normalizing
stepper, checkpoints, resume, load_policy and the configuration errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from spaces_envs import space_id

import asyncdqn
from asyncdqn.algo.normalize import normalize, scale_of
from asyncdqn.backends.base import SPAWN, SharedObsStats
from asyncdqn.config import resolve_config
from asyncdqn.envs.normalize import NormalizingStepper, ObsNormalizer, initial_stats
from asyncdqn.envs.vector import GymnasiumStepper
from asyncdqn.errors import ConfigError
from asyncdqn.trainer import Trainer


def _empty(dim: int) -> SharedObsStats:
    return SharedObsStats(0.0, np.zeros(dim), np.ones(dim), frozen=False)


def test_two_workers_merge_into_the_statistics_of_all_their_rows() -> None:
    stats = _empty(2)
    a, b = ObsNormalizer(stats, sync_every=3), ObsNormalizer(stats, sync_every=2)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        batch = rng.normal([5.0, -1.0], [2.0, 0.1], size=(4, 2))
        rows.append(batch)
        (a if i % 2 else b).observe(batch)
    a.flush()
    b.flush()
    count, mean, var = stats.read()
    data = np.concatenate(rows)
    assert count == len(data)
    np.testing.assert_allclose(mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, data.var(axis=0), rtol=1e-12)
    # both normalize with the merged statistics they read back
    x = rng.normal(size=(3, 2))
    np.testing.assert_allclose(a(x), normalize(x, mean, scale_of(var)), rtol=1e-6)
    np.testing.assert_allclose(b(x), a(x))


def _child_adds(stats: SharedObsStats) -> None:
    stats.add(3.0, np.array([2.0]), np.array([1.0]))


def test_a_worker_process_adds_to_the_same_statistics() -> None:
    stats = SharedObsStats(1.0, np.array([6.0]), np.array([0.0]), frozen=False)
    proc = SPAWN.Process(target=_child_adds, args=(stats,))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    count, mean, var = stats.read()
    # {6} with 3 samples of mean 2, var 1: mean 3, M2 = 0 + 3 + 16 * 3 / 4 = 15, var 15 / 4
    assert count == 4.0 and mean[0] == pytest.approx(3.0) and var[0] == pytest.approx(3.75)


def test_the_stepper_normalizes_observations_and_final_observations() -> None:
    import chain_env  # (AsyncDQNTest/Chain-v0: position 0, 1, 2, 3 then terminal)

    stats = _empty(1)
    stepper = NormalizingStepper(GymnasiumStepper(chain_env.CHAIN_ID, [1, 2]), ObsNormalizer(stats, sync_every=1))
    first = stepper.reset()  # statistics of the two reset rows {0, 0}: mean 0, var 0
    np.testing.assert_array_equal(first, [[0.0], [0.0]])
    obs, *_ = stepper.step(np.array([0, 1]))  # rows {0, 0, 1, 1}: mean 0.5, var 0.25
    np.testing.assert_allclose(obs, [[1.0], [1.0]], rtol=1e-6)  # (1 - 0.5) / 0.5
    stepper.step(np.array([0, 0]))  # rows + {2, 2}: mean 1, var 2/3
    obs, _, term, _, final = stepper.step(np.array([0, 0]))  # position 3 ends; next obs is the reset 0
    assert term.all() and final is not None
    count, mean, var = stats.read()  # rows + {0, 0} (the reset observations, not the finals)
    assert count == 8 and mean[0] == pytest.approx(6 / 8) and var[0] == pytest.approx(np.var([0, 0, 1, 1, 2, 2, 0, 0]))
    np.testing.assert_allclose(final, np.full((2, 1), (3 - mean[0]) / np.sqrt(var[0] + 1e-8)), rtol=1e-5)
    np.testing.assert_allclose(obs, np.full((2, 1), (0 - mean[0]) / np.sqrt(var[0] + 1e-8)), rtol=1e-5)
    stepper.close()


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="normalize_obs: running statistics are shared in one machine"):
        resolve_config({"env_id": "CartPole-v1", "backend": "ray", "normalize_obs": "running"})
    with pytest.raises(ValueError, match=r"needs finite bounds, but 2 of 4 .* use --normalize-obs running"):
        initial_stats("bounds", "CartPole-v1")
    init = initial_stats("bounds", "MountainCar-v0")
    assert init is not None
    _, mean, var, frozen = init
    assert frozen and np.allclose(mean, [-0.3, 0.0]) and np.allclose(var, [0.81, 0.0049])


RUN = {"env_id": space_id("box2d"), "backend": "serial", "workers": 2, "envs_per_worker": 4, "hidden_sizes": [32],
       "t_max": 4, "gamma": 0.9, "lr": 3e-3, "eps_anneal_steps": 2000, "final_epsilons": [0.1],
       "final_epsilon_probs": [1.0], "target_update_steps": 200, "eval_every_steps": 2000, "eval_episodes": 5,
       "screen_episodes": 5, "progress": False, "checkpoint_every": 2000, "seed": 5, "normalize_obs": "running"}


def test_running_statistics_are_saved_restored_on_resume_and_loaded_by_the_policy(tmp_path: Path) -> None:
    path = tmp_path / "run"
    first = asyncdqn.train({**RUN, "max_steps": 4000, "run_dir": str(path)})
    assert first.total_steps >= 4000
    final = load_file(str(path / "checkpoints" / "final.safetensors"))
    count = float(final["obs_norm.count"][0])
    assert count > 2000  # about one row per env step
    var = final["obs_norm.var"]  # box2d shows [[c, 0], [0, 5 - c]]: two constant dimensions
    assert var.shape == (4,) and var[0] > 0 and var[0] == pytest.approx(var[3]) and var[1] == var[2] == 0

    # load_policy: Q-values of raw observations = the network's on observations normalized with the saved stats
    policy = asyncdqn.load_policy(path, "final")
    x = np.random.default_rng(2).uniform(0, 5, size=(6, 4)).astype(np.float32)
    want = policy.network(__import__("torch").from_numpy(
        normalize(x, final["obs_norm.mean"], scale_of(final["obs_norm.var"])))).detach().numpy()
    np.testing.assert_allclose(policy.q_values(x), want, rtol=1e-5, atol=1e-6)

    # a resumed run starts from the saved statistics and keeps counting from them
    trainer = Trainer.resume(path, {"max_steps": 8000})
    assert trainer.shared.obs_stats is not None
    got = trainer.shared.obs_stats.read()
    assert got[0] == count
    np.testing.assert_array_equal(got[1], final["obs_norm.mean"])
    np.testing.assert_array_equal(got[2], final["obs_norm.var"])
    second = trainer.run()
    assert second.total_steps >= 8000
    again = load_file(str(path / "checkpoints" / "final.safetensors"))
    assert float(again["obs_norm.count"][0]) > count + 2000


def test_bounds_normalization_learns_with_dqn_too(tmp_path: Path) -> None:
    """--algo dqn applies the same statistics (here the fixed bounds) to what it stores and acts on."""
    result = asyncdqn.train({**RUN, "workers": 1, "algo": "dqn", "normalize_obs": "bounds", "learning_starts": 200,
                             "batch_size": 32, "solve_score": 1.0, "max_steps": 20_000, "eval_every_steps": 1000,
                             "checkpoint_every": None, "run_dir": str(tmp_path / "dqn")})
    assert result.solved, result.best_eval
    best = load_file(str(tmp_path / "dqn" / "checkpoints" / "best.safetensors"))
    np.testing.assert_allclose(best["obs_norm.mean"], [2.5, 2.5, 2.5, 2.5])  # Box(0, 5): centre 2.5, half-width 2.5
    np.testing.assert_allclose(best["obs_norm.var"], [6.25] * 4)
