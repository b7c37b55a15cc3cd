"""PQN's options in the ActorLearner: Q(lambda) targets (--returns lambda), no target network
(--target-update-steps 0), and --epochs x --minibatches updates per segment.

The chain environment and the known-Q networks of test_async_q.py make the targets known by hand
(Q(s, a) = bias[a] + slope[a] * relu(s)); the compiled (--jit) and numpy (--no-jit) paths are both run.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_async_q import (
    NO_EXPLORE,
    assert_params_equal,
    known_q_worker,
    make_cfg,
    make_shared,
    make_worker,
    params,
    params_differ,
    run_segments,
    set_q,
    targets_col,
)

from asyncdqn import train
from asyncdqn.errors import ConfigError
from chain_env import LONG_ID, RAMP_ID


class NoStep:
    """An optimizer that only records the gradients handed to it (the weights stay put)."""

    def __init__(self, model) -> None:
        self.model, self.grads, self.steps = model, [], 0

    def step(self, lr):
        self.steps += 1
        self.grads.append(self.model.q[2].bias.grad.detach().numpy().copy())


# ================================================================ Q(lambda)
@pytest.mark.parametrize("jit", [True, False])
def test_lambda_targets_terminated_through_worker(jit):
    # Chain of length 3, t_max 4: next obs [1, 2, 3, 1], terminated at t=2. Q_target = [5, 2]: V = 5.
    # gamma 0.5, lambda 0.5: G_t = 1 + 0.5 (0.5 V + 0.5 G_{t+1})
    # G_3 = 1 + 0.5*5 = 3.5 (segment tail); G_2 = 1 (terminated)
    # G_1 = 1 + 0.5*(2.5 + 0.5) = 2.5 ; G_0 = 1 + 0.5*(2.5 + 1.25) = 2.875
    cfg = make_cfg(algo="n-step-q", returns="lambda", lam=0.5, jit=jit, **NO_EXPLORE)
    _shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[5.0, 2.0])
    worker.run_segment()
    np.testing.assert_allclose(targets_col(worker), [2.875, 2.5, 1.0, 3.5], rtol=1e-6)


@pytest.mark.parametrize("jit", [True, False])
def test_lambda_targets_truncated_bootstrap_from_the_final_observation(jit):
    # Long chain truncated every 2 steps: next obs [1, 2, 1, 2], done [F, T, F, T], nothing terminates.
    # Q_target(s) = [0, 2s]: V(next) = [2, 4, 2, 4] (the final obs 2, not the reset 0)
    # G_3 = 1 + 0.5*4 = 3 ; G_2 = 1 + 0.5*(0.5*2 + 0.5*3) = 2.25 ; G_1 = 3 ; G_0 = 2.25
    cfg = make_cfg(env_id=LONG_ID, max_episode_steps=2, algo="n-step-q", returns="lambda", lam=0.5, jit=jit,
                   **NO_EXPLORE)
    _shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[0.0, 0.0],
                                    target_slope=[0.0, 2.0])
    worker.run_segment()
    np.testing.assert_allclose(targets_col(worker), [2.25, 3.0, 2.25, 3.0], rtol=1e-6)


@pytest.mark.parametrize("jit", [True, False])
def test_lambda_one_and_zero_through_the_worker(jit):
    # Ramp chain (rewards [1, 2, 3, 1], terminated at t=2), V = 5:
    # lambda 1 = the n-step targets [2.75, 3.5, 3, 3.5] (test_async_q.test_n_step_q_ramp_rewards_terminated);
    # lambda 0 = the one-step targets [1 + 2.5, 2 + 2.5, 3, 1 + 2.5] = [3.5, 4.5, 3, 3.5]
    for lam, expected in ((1.0, [2.75, 3.5, 3.0, 3.5]), (0.0, [3.5, 4.5, 3.0, 3.5])):
        cfg = make_cfg(env_id=RAMP_ID, algo="n-step-q", returns="lambda", lam=lam, jit=jit, **NO_EXPLORE)
        _shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[5.0, 2.0])
        worker.run_segment()
        np.testing.assert_allclose(targets_col(worker), expected, rtol=1e-6)


def test_lambda_runs_learn_the_same_with_compiled_and_numpy_targets():
    # --jit's compiled Q(lambda) targets against the numpy reference, through whole training segments
    # (episode ends, double-Q): the same actions and, up to float32 rounding, the same weights
    common = {"env_id": "CartPole-v1", "envs_per_worker": 4, "t_max": 8, "hidden_sizes": [32, 32], "gamma": 0.99,
              "target_update_steps": 200, "max_episode_steps": 30, "returns": "lambda", "lam": 0.65,
              "double_q": True}
    _, jit_actions, jit_params, _ = run_segments(make_cfg(**common, jit=True), 30)
    _, np_actions, np_params, _ = run_segments(make_cfg(**common, jit=False), 30)
    np.testing.assert_array_equal(jit_actions, np_actions)
    for a, b in zip(jit_params, np_params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# ========================================================= no target network
@pytest.mark.parametrize(("algo", "returns", "expected_with_target", "expected_online"), [
    # V from the target net = 5, from the online net = max(0, 1) = 1 (chain terminated at t=2, gamma 0.5)
    ("n-step-q", "nstep", [1.75, 1.5, 1.0, 3.5], [1.75, 1.5, 1.0, 1.5]),
    # lambda 0.5 with V = 1: G_3 = 1.5, G_2 = 1, G_1 = 1 + 0.5*(0.5 + 0.5) = 1.5, G_0 = 1 + 0.5*(0.5 + 0.75)
    ("n-step-q", "lambda", [2.875, 2.5, 1.0, 3.5], [1.625, 1.5, 1.0, 1.5]),
    ("one-step-q", "nstep", [3.5, 3.5, 1.0, 3.5], [1.5, 1.5, 1.0, 1.5]),
])
@pytest.mark.parametrize("jit", [True, False])
def test_no_target_network_bootstraps_from_the_online_weights(algo, returns, expected_with_target, expected_online,
                                                             jit):
    for period, expected in ((1_000_000, expected_with_target), (0, expected_online)):
        cfg = make_cfg(algo=algo, returns=returns, lam=0.5, target_update_steps=period, jit=jit, **NO_EXPLORE)
        shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[5.0, 2.0])
        worker.optimizer = NoStep(shared.model)  # keep the online weights known
        worker.run_segment()
        np.testing.assert_allclose(targets_col(worker), expected, rtol=1e-6)


def test_no_target_network_never_syncs_and_learns_from_the_moving_weights():
    # Many segments with --target-update-steps 0: no sync (and no division by the period), the shared
    # target copy stays as built, and the targets follow the online weights as they learn
    cfg = make_cfg(env_id=LONG_ID, t_max=3, envs_per_worker=2, target_update_steps=0, hidden_sizes=[8], lr=1e-2)
    shared = make_shared(cfg)
    syncs, target_before = shared.target.syncs, params(shared.target.model)
    worker = make_worker(cfg, shared)
    for _ in range(20):
        worker.run_segment()
    assert shared.counter.value == 120 and shared.target.syncs == syncs
    assert_params_equal(params(shared.target.model), target_before)
    assert params_differ(params(shared.model), target_before)
    q_next = worker.online(worker.obs_seq[worker.T])  # the online net's values of the tail's next states
    assert not np.allclose(q_next, worker.engine.target(worker.obs_seq[worker.T]))
    y = worker.targets()  # tail targets: r + gamma max_a Q_online(s_T, a) (no episode ends on the long chain)
    np.testing.assert_allclose(y[-1], 1.0 + cfg.gamma * q_next.max(axis=1), rtol=1e-5)


# ============================================ values recorded while acting
@pytest.mark.parametrize("jit", [True, False])
def test_acted_values_are_the_weights_of_their_step_and_cost_no_forward_pass(jit):
    # Chain terminated at t=2, gamma 0.5, lambda 0.5, no target network; the online net acts with
    # Q = [0, 1] (V = 1): the targets are the online ones, [1.625, 1.5, 1.0, 1.5]. The weights then
    # move to Q = [3, 0] (V = 3): --lambda-values learn recomputes V from them
    # (G_3 = 2.5, G_2 = 1, G_1 = 1 + 0.5 (1.5 + 0.5) = 2, G_0 = 1 + 0.5 (1.5 + 1) = 2.25),
    # act keeps the values its steps acted on and runs no network for them.
    for mode, after in (("learn", [2.25, 2.0, 1.0, 2.5]), ("act", [1.625, 1.5, 1.0, 1.5])):
        cfg = make_cfg(algo="n-step-q", returns="lambda", lam=0.5, target_update_steps=0, lambda_values=mode,
                       jit=jit, **NO_EXPLORE)
        shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[5.0, 2.0])
        worker.optimizer = NoStep(shared.model)
        worker.run_segment()
        np.testing.assert_allclose(targets_col(worker), [1.625, 1.5, 1.0, 1.5], rtol=1e-6)
        set_q(shared.model, [3.0, 0.0], (0.0, 0.0))
        calls: list[int] = []
        worker.online = worker.target_net = _counting(worker.online, calls)
        np.testing.assert_allclose(targets_col(worker), after, rtol=1e-6)
        if mode == "act":
            assert calls == [], calls


def _counting(forward, calls):
    def counted(obs):
        calls.append(len(obs))
        return forward(obs)
    return counted


@pytest.mark.parametrize("jit", [True, False])
def test_acted_values_of_a_truncated_step_come_from_its_final_observation(jit):
    # Long chain truncated every 2 steps: the row acted on after t=1 and t=3 is the next episode's
    # first (s = 0, V = 0); the bootstrap is V of the final observation, s = 2: Q(s) = [0, 2s], V = 4.
    # Targets as with a target net of the same values: [2.25, 3.0, 2.25, 3.0].
    cfg = make_cfg(env_id=LONG_ID, max_episode_steps=2, algo="n-step-q", returns="lambda", lam=0.5,
                   target_update_steps=0, lambda_values="act", jit=jit, **NO_EXPLORE)
    shared, worker = known_q_worker(cfg, online_bias=[0.0, 0.0], target_bias=[9.0, 9.0], online_slope=[0.0, 2.0])
    worker.optimizer = NoStep(shared.model)
    worker.run_segment()
    np.testing.assert_allclose(worker.v_acted[:, 0], [2.0, 0.0, 2.0, 0.0])  # what acting saw
    np.testing.assert_allclose(targets_col(worker), [2.25, 3.0, 2.25, 3.0], rtol=1e-6)


def test_acted_values_need_lambda_returns_without_a_target_network():
    with pytest.raises(ConfigError, match="lambda_values"):
        make_cfg(algo="n-step-q", returns="lambda", lambda_values="act")  # a target network
    with pytest.raises(ConfigError, match="lambda_values"):
        make_cfg(algo="n-step-q", target_update_steps=0, lambda_values="act")  # n-step returns


def test_a_presets_acted_values_give_way_to_a_target_network_the_user_asks_for():
    # MinAtar's n-step-q preset records its Q(lambda) values while acting; a user (or the seed-compat
    # preset) bringing a target network back gets the learner's values, not a refusal of an option
    # never typed. Given explicitly, the contradiction is still refused.
    from asyncdqn.config import resolve_config

    env = "MinAtar/Breakout-v1"
    assert resolve_config({"env_id": env}).lambda_values == "act"
    for extra in ({"target_update_steps": 1000}, {"returns": "nstep"}, {"preset": "seed-compat", "algo": "n-step-q"}):
        assert resolve_config({"env_id": env, **extra}).lambda_values == "learn", extra
    with pytest.raises(ConfigError, match="lambda_values"):
        resolve_config({"env_id": env, "target_update_steps": 1000, "lambda_values": "act"})


# ================================================= epochs and minibatches
def test_one_epoch_of_one_minibatch_is_todays_single_update():
    # --epochs 1 --minibatches 1 (the defaults) through the general update loop (`_learn`) against the fused
    # path's one-call update: bit-identical actions, weights and losses; no row shuffle drawn
    runs = []
    for general in (False, True):
        cfg = make_cfg(env_id="CartPole-v1", envs_per_worker=4, t_max=5, hidden_sizes=[32, 32], gamma=0.99,
                       target_update_steps=200, max_episode_steps=30, lr=1e-2, epochs=1, minibatches=1)
        shared = make_shared(cfg)
        worker = make_worker(cfg, shared)
        assert worker._fused_learn
        worker._fused_learn = not general
        state = worker._batch_rng.bit_generator.state
        losses, actions = [], []
        for _ in range(40):
            worker.run_segment()
            losses.append(worker.last_loss)
            actions.append(worker.act_buf.copy())
        assert worker._batch_rng.bit_generator.state == state
        runs.append((np.array(actions), params(shared.model), losses, shared.optimizer.step_count))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert_params_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2] and runs[0][3] == runs[1][3] == 40


@pytest.mark.parametrize("reduce", ["mean", "sum"])
@pytest.mark.parametrize("jit", [True, False])
def test_minibatches_partition_the_segment_each_epoch_with_targets_computed_once(reduce, jit):
    # t_max 4 x 2 envs = 8 rows; --epochs 2 --minibatches 3: minibatches of 3, 3, 2 rows, 6 optimizer steps.
    # Q(s, a) = 1 everywhere, target Q = 0: the last layer's bias gradient of a minibatch is, per action, the
    # sum over its rows with that action of clip(1 - y, -1, 1), over its rows (mean) or not (sum).
    cfg = make_cfg(algo="n-step-q", envs_per_worker=2, grad_clip=None, grad_reduce=reduce, epochs=2, minibatches=3,
                   jit=jit, **NO_EXPLORE)
    shared, worker = known_q_worker(cfg, online_bias=(1.0, 1.0), target_bias=(0.0, 0.0))
    worker.optimizer = recorder = NoStep(shared.model)
    calls = {"targets": 0}
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    targets, loss_and_grads = worker.targets, worker.engine.loss_and_grads

    def counting_targets():
        calls["targets"] += 1
        return targets()

    def recording_loss(obs, actions, y, loss):
        seen.append((obs[:, 0].copy(), actions.copy(), y.copy()))
        return loss_and_grads(obs, actions, y, loss)

    worker.targets, worker.engine.loss_and_grads = counting_targets, recording_loss
    worker.run_segment()
    assert calls["targets"] == 1 and recorder.steps == 6
    assert [len(a) for _, a, _ in seen] == [3, 3, 2, 3, 3, 2]
    rows = sorted((float(s), int(a), float(y)) for s, a, y in zip(worker.obs_buf[..., 0].ravel(),
                                                                  worker.act_buf.ravel(), targets().ravel(),
                                                                  strict=True))
    orders = []
    for epoch in (seen[:3], seen[3:]):
        got = [(float(s), int(a), float(y)) for obs, act, ys in epoch for s, a, y in zip(obs, act, ys, strict=True)]
        assert sorted(got) == rows  # every row of the segment once per epoch
        orders.append(got)
    assert orders[0] != orders[1]  # reshuffled each epoch
    for (_, actions, y), grad in zip(seen, recorder.grads, strict=True):
        per_action = np.array([np.clip(1.0 - y[actions == a], -1.0, 1.0).sum() for a in (0, 1)])
        expected = per_action if reduce == "sum" else per_action / len(y)
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_epochs_take_one_optimizer_step_per_minibatch_and_learn():
    cfg = make_cfg(env_id="CartPole-v1", envs_per_worker=2, t_max=5, hidden_sizes=[16], epochs=3, minibatches=2,
                   lr=1e-2)
    shared = make_shared(cfg)
    worker = make_worker(cfg, shared)
    before = params(shared.model)
    for _ in range(4):
        worker.run_segment()
    assert shared.optimizer.step_count == 4 * 3 * 2 and shared.counter.value == 40
    assert params_differ(params(shared.model), before)


def test_options_are_checked():
    for bad, match in (({"returns": "lambda", "algo": "one-step-q"}, "returns"),
                       ({"lam": 1.5}, "lam"), ({"epochs": 0}, "epochs"), ({"minibatches": 0}, "minibatches"),
                       ({"minibatches": 41, "t_max": 5, "envs_per_worker": 8}, "minibatches"),
                       ({"algo": "dqn", "epochs": 2}, "epochs"), ({"algo": "dqn", "target_update_steps": 0},
                                                                  "target_update_steps"),
                       ({"target_update_steps": -1}, "target_update_steps")):
        with pytest.raises(ConfigError, match=match):
            make_cfg(**bad)


def test_pqn_recipe_learns_cartpole(tmp_path):
    # Q(lambda), no target network, 2 epochs x 2 minibatches and RAdam together, one serial worker with a
    # fixed seed: the greedy policy balances the pole well past a random one's ~20 steps
    r = train({"env_id": "CartPole-v1", "backend": "serial", "workers": 1, "seed": 1, "max_steps": 80_000,
               "envs_per_worker": 8, "t_max": 8, "returns": "lambda", "lam": 0.65, "target_update_steps": 0,
               "epochs": 2, "minibatches": 2, "optimizer": "radam", "lr": 1e-3, "eps_anneal_steps": 20_000,
               "eval_every_steps": None, "eval_episodes": 10, "progress": False, "run_dir": str(tmp_path / "pqn")})
    assert r.final_eval["mean"] >= 150, r.final_eval
