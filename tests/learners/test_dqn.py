"""Replay-buffer DQN (--algo dqn): config, presets, the learner on the chain env, CartPole."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
import torch

import chain_env  # noqa: F401  (registers the test environments; tests/conftest.py puts it on sys.path)
from asyncdqn.backends import make_backend
from asyncdqn.backends.base import ListSink
from asyncdqn.backends.serial import SerialBackend
from asyncdqn.backends.shared import build_shared
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.errors import ConfigError, DivergedError, TrainingError
from asyncdqn.learners.dqn import DQNLearner
from asyncdqn.trainer import train
from chain_env import CHAIN_ID, LONG_ID


def make_cfg(**overrides: Any):
    base = {"env_id": CHAIN_ID, "algo": "dqn", "envs_per_worker": 2, "hidden_sizes": [4], "gamma": 0.5,
            "max_steps": 10_000, "progress": False, "buffer_size": 100, "batch_size": 8,
            "learning_starts": 0, "target_update_steps": 1_000_000,
            "eps_start": 0.0, "final_epsilons": [0.0], "final_epsilon_probs": [1.0]}
    base.update(overrides)
    return resolve_config(base)


def make_learner(cfg, sink=None):
    shared = build_shared(cfg, inspect_env(cfg.env_id, cfg.max_episode_steps))
    shared.target.sync_from(shared.model, 0)
    return shared, DQNLearner(cfg, shared.model, shared.optimizer, shared.target, shared.counter,
                              sink if sink is not None else ListSink())


def test_dqn_config_one_worker_and_presets():
    cfg = resolve_config({"env_id": "CartPole-v1", "algo": "dqn"})
    assert cfg.resolved_workers() == 1
    assert cfg.n_step == 3 and cfg.double_q and cfg.buffer_size == 50_000  # the (CartPole, dqn) preset
    assert cfg.solve_score == 475.0  # the CartPole env preset still applies
    assert resolve_config({"env_id": "CartPole-v1"}).n_step == 1  # async algos unaffected
    assert resolve_config({"env_id": "CartPole-v1", "algo": "dqn", "n_step": 1}).n_step == 1  # explicit wins
    with pytest.raises(ConfigError, match="workers"):
        resolve_config({"env_id": "CartPole-v1", "algo": "dqn", "workers": 2})
    for field, bad in [("batch_size", 0), ("train_freq", 0), ("gradient_steps", 0), ("n_step", 0),
                       ("learning_starts", -1), ("buffer_size", 0)]:
        with pytest.raises(ConfigError, match=field):
            resolve_config({"env_id": "CartPole-v1", "algo": "dqn", field: bad})


def test_make_backend_selects_replay_for_dqn():
    cfg = make_cfg(backend="process")
    shared = build_shared(cfg, inspect_env(cfg.env_id))
    assert isinstance(make_backend(cfg, shared), SerialBackend)


def test_learner_stores_true_transitions_and_reports_episodes():
    sink = ListSink()
    cfg = make_cfg(train_freq=4, learning_starts=1_000)  # no learning yet
    shared, learner = make_learner(cfg, sink)
    assert learner.run_segment() == 8
    assert shared.counter.value == 8 and learner.updates == 0
    b = learner.buffer
    assert len(b) == 8
    # chain of length 3: positions 0,1,2 then the final obs 3 (terminated), then a new episode from 0
    np.testing.assert_array_equal(b.obs[:4, 0, 0], [0, 1, 2, 0])
    np.testing.assert_array_equal(b.next_obs[:4, 0, 0], [1, 2, 3, 1])
    np.testing.assert_array_equal(b.terminated[:4, 0], [False, False, True, False])
    assert [(r.step, r.episode_return, r.length) for r in sink.records] == [(6, 3.0, 3), (6, 3.0, 3)]
    assert np.isnan(sink.records[0].mean_loss)


def test_learner_learns_after_learning_starts_with_finite_loss():
    sink = ListSink()
    cfg = make_cfg(train_freq=1, gradient_steps=2, learning_starts=4, n_step=2)
    shared, learner = make_learner(cfg, sink)
    before = [p.detach().clone() for p in shared.model.parameters()]
    for _ in range(6):
        learner.run_segment()
    # steps 2, 4 ... : learning from new >= 4 on, i.e. segments 2..6 -> 5 phases of 2 updates
    assert learner.updates == 10
    assert shared.optimizer.step_count == 10
    assert any(not torch.equal(a, p) for a, p in zip(before, shared.model.parameters(), strict=True))
    assert any(np.isfinite(r.mean_loss) for r in sink.records)


def test_non_finite_loss_names_its_source_like_the_async_workers():
    # NaN weights: the model diverged (DivergedError: the trainer writes no final checkpoint of it)
    cfg = make_cfg(learning_starts=4)
    shared, learner = make_learner(cfg)
    with torch.no_grad():
        next(shared.model.parameters()).fill_(float("nan"))
    with pytest.raises(DivergedError, match="dqn: the Q-network's parameters became non-finite"):
        for _ in range(4):
            learner.run_segment()
    # a NaN reward: the environment's fault, the weights are still good (a plain TrainingError)
    shared, learner = make_learner(make_cfg(learning_starts=10**6))
    for _ in range(10):
        learner.run_segment()
    learner.buffer.rewards[:] = np.nan  # the next batch samples these rows (and one finite one)
    learner.cfg = make_cfg(learning_starts=0)
    with pytest.raises(TrainingError, match="dqn: the environment returned a non-finite reward") as info:
        learner.run_segment()
    assert not isinstance(info.value, DivergedError)


def test_runaway_but_finite_q_values_stop_dqn_as_diverged():
    # Weights blown up a millionfold stay finite, but the TD loss then implies |Q| far
    # beyond 1000 x (max|r| / (1 - gamma) + 1) = 3,000 on the chain (r = 1, gamma 0.5).
    cfg = make_cfg(learning_starts=4)
    shared, learner = make_learner(cfg)
    with torch.no_grad():
        for p in shared.model.parameters():
            p.mul_(1e3).add_(1.0)
    with pytest.raises(DivergedError, match="dqn: the TD loss .* implies Q-values far beyond"):
        for _ in range(4):
            learner.run_segment()


def test_targets_bootstrap_from_target_net_through_truncation():
    # LongChain truncated at 2 steps: every stored step is a truncation or not; V from a zero target net
    cfg = make_cfg(env_id=LONG_ID, max_episode_steps=2, envs_per_worker=1, n_step=1, learning_starts=10**6)
    shared, learner = make_learner(cfg)
    with torch.no_grad():
        for p in shared.target.model.parameters():
            p.zero_()
        shared.target.model.q[-1].bias.fill_(4.0)  # target Q = 4 everywhere
    shared.target.sync_from(shared.target.model, 0)
    learner._target_version = learner.target.read_into(learner._target_arrays)
    for _ in range(4):
        learner.run_segment()
    batch = learner.buffer.sample(50, np.random.default_rng(0))
    y = learner.targets(batch)
    # reward 1 per step; never terminated (truncation bootstraps): y = 1 + 0.5 * 4
    np.testing.assert_allclose(y, 3.0)
    assert batch.done.any() and not batch.terminated.any()


@pytest.mark.parametrize("loss, clip, reduce", [("huber", None, "mean"), ("mse", None, "mean"),
                                                ("huber", 0.05, "mean"), ("huber", None, "sum")])
def test_update_applies_the_clipped_td_loss_gradient_of_the_sampled_batch(loss, clip, reduce):
    # One update's gradient against autograd on a copy of the net: the mean (or summed, with
    # --grad-reduce sum) TD loss of Q(s, a) against the batch's n-step targets, its global norm
    # clipped to `clip`.
    import copy

    from asyncdqn.algo.targets import td_loss

    cfg = make_cfg(hidden_sizes=[5], n_step=2, loss=loss, grad_clip=clip, grad_reduce=reduce, learning_starts=10**6)
    shared, learner = make_learner(cfg)
    with torch.no_grad():
        for p in shared.model.parameters():
            p.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(p.numel()))
    for _ in range(10):
        learner.run_segment()
    batch = learner.buffer.sample(8, np.random.default_rng(3))
    y = learner.targets(batch)
    ref = copy.deepcopy(shared.model)
    q = ref(torch.from_numpy(batch.obs)).gather(1, torch.from_numpy(batch.actions).unsqueeze(1)).squeeze(1)
    expected_loss = td_loss(q, torch.from_numpy(y), loss)
    (expected_loss * (len(y) if reduce == "sum" else 1)).backward()
    expected = [p.grad.double() for p in ref.parameters()]
    norm = torch.sqrt(sum((g ** 2).sum() for g in expected))
    if clip is not None:
        assert norm > clip  # the clip is active
        expected = [g * (clip / norm) for g in expected]

    seen: list[list[torch.Tensor]] = []

    class Capture:
        def step(self, lr):
            seen.append([p.grad.detach().clone() for p in shared.model.parameters()])

    learner.optimizer = Capture()
    learner._learn(batch, 0)
    assert learner.last_loss == pytest.approx(float(expected_loss.detach()), rel=1e-5)
    assert len(seen) == 1
    for got, want in zip(seen[0], expected, strict=True):
        np.testing.assert_allclose(got.double().numpy(), want.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_dqn_learns_cartpole(tmp_path):
    # The full solve (greedy >= 475 over 100 episodes, ~80k steps) is measured in the README;
    # here 24k steps (~8 s alone) must lift the greedy return far above an untrained net's ~10.
    result = train({"env_id": "CartPole-v1", "algo": "dqn", "max_steps": 24_000, "solve_score": None,
                    "max_seconds": None, "eval_every_steps": None, "eval_episodes": 10, "progress": False,
                    "run_dir": str(tmp_path / "run")})
    assert result.total_steps == 24_000
    assert result.final_eval["episodes"] == 10
    assert result.final_eval["mean"] >= 150.0, result.final_eval


def test_cli_rejects_several_dqn_workers(tmp_path):
    import os
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "asyncdqn.cli", "train", "--algo", "dqn", "--env", "CartPole-v1",
                        "--workers", "2", "--runs-root", str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith("asyncdqn: error: workers:") and "one replay learner" in r.stderr
    assert not any(tmp_path.iterdir())  # rejected before a run directory was made
