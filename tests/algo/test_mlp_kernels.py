"""The compiled kernels (algo/mlp_kernels.py) against the numpy reference math and torch autograd, and the
engine that uses them (learners/engines.py: JitMLPEngine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asyncdqn.algo import mlp_kernels as mk
from asyncdqn.algo.exploration import epsilon_greedy_drawn
from asyncdqn.algo.mlp_grad import td_loss_and_grads
from asyncdqn.algo.targets import td_loss
from asyncdqn.learners.engines import JitMLPEngine, NumpyMLPEngine, make_engine
from asyncdqn.model import NumpyMLP, build_model, flatten_parameters

HIDDEN = [(16,), (32, 32), (64, 32, 16), (128, 128)]


def _flat_model(obs_dim: int, n_actions: int, hidden: tuple[int, ...], seed: int = 1):
    model = build_model(obs_dim, n_actions, hidden, seed=seed)
    flat = flatten_parameters(model).numpy()
    sizes = mk.layer_sizes([tuple(p.shape) for p in list(model.parameters())[0::2]])
    return model, flat, sizes


def _batch(rng: np.random.Generator, rows: int, obs_dim: int, n_actions: int):
    x = rng.normal(size=(rows, obs_dim)).astype(np.float32)
    a = rng.integers(0, n_actions, size=rows)
    y = (rng.normal(size=rows) * 2.0).astype(np.float32)  # |Q - y| on both sides of huber's 1
    return x, a, y


@pytest.mark.parametrize("hidden", HIDDEN)
def test_forward_matches_numpy_and_torch(hidden: tuple[int, ...]) -> None:
    model, flat, sizes = _flat_model(6, 3, hidden)
    x = np.random.default_rng(0).normal(size=(9, 6)).astype(np.float32)
    q = mk.forward(flat, sizes, x)
    arrays = [p.detach().numpy() for p in model.parameters()]
    np.testing.assert_allclose(q, NumpyMLP(arrays)(x), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(q, model(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["huber", "mse"])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_loss_and_gradient_match_autograd_and_the_numpy_backprop(kind: str, hidden: tuple[int, ...]) -> None:
    model, flat, sizes = _flat_model(6, 3, hidden)
    x, a, y = _batch(np.random.default_rng(len(hidden)), 40, 6, 3)
    grad = np.full_like(flat, np.nan)  # must be overwritten entirely
    value = mk.td_loss_and_grad(flat, sizes, x, a, y, kind == "huber", grad)

    model.zero_grad()
    q = model(torch.from_numpy(x)).gather(1, torch.from_numpy(a).view(-1, 1)).squeeze(1)
    ref = td_loss(q, torch.from_numpy(y), kind)
    ref.backward()
    ref_grad = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    assert value == pytest.approx(float(ref.detach()), rel=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)

    ps = [p.detach().numpy() for p in model.parameters()]
    grads = [np.empty_like(p) for p in ps]
    np_value = td_loss_and_grads(ps[0::2], ps[1::2], x, a, y, kind, grads[0::2], grads[1::2])
    assert value == pytest.approx(np_value, rel=1e-5)
    np.testing.assert_allclose(grad, np.concatenate([g.ravel() for g in grads]), rtol=1e-5, atol=1e-7)


def test_a_wrong_gradient_is_caught() -> None:
    # the comparison above has power: the same kernel on other weights disagrees with autograd
    model, flat, sizes = _flat_model(6, 3, (32, 32))
    x, a, y = _batch(np.random.default_rng(5), 40, 6, 3)
    grad = np.empty_like(flat)
    mk.td_loss_and_grad(flat * 1.01, sizes, x, a, y, True, grad)
    model.zero_grad()
    q = model(torch.from_numpy(x)).gather(1, torch.from_numpy(a).view(-1, 1)).squeeze(1)
    td_loss(q, torch.from_numpy(y), "huber").backward()
    ref_grad = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    assert not np.allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)


def test_acting_is_epsilon_greedy_drawn_of_the_forward() -> None:
    _, flat, sizes = _flat_model(8, 4, (128, 128))
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.normal(size=(8, 8)).astype(np.float32)
        eps, u = rng.random(8), rng.random(8)
        random_actions = rng.integers(0, 4, size=8)
        got = mk.act_drawn(flat, sizes, x, eps, u, random_actions)
        want = epsilon_greedy_drawn(mk.forward(flat, sizes, x), eps, u, random_actions)
        np.testing.assert_array_equal(got, want)


def test_ties_take_the_first_maximum_like_argmax() -> None:
    _, flat, sizes = _flat_model(2, 3, (4,))
    flat[:] = 0.0  # every Q-value 0: all actions tie
    x = np.ones((3, 2), dtype=np.float32)
    actions = mk.act_drawn(flat, sizes, x, np.zeros(3), np.ones(3), np.full(3, 2))
    np.testing.assert_array_equal(actions, [0, 0, 0])


def test_non_finite_weights_give_a_non_finite_loss() -> None:
    # a ReLU must pass NaN on (np.maximum and torch do), or diverged weights would look finite
    _, flat, sizes = _flat_model(6, 3, (16, 16))
    flat[:5] = np.nan  # first rows of the first layer
    x, a, y = _batch(np.random.default_rng(0), 10, 6, 3)
    assert not np.isfinite(mk.td_loss_and_grad(flat, sizes, x, a, y, True, np.empty_like(flat)))
    assert not np.isfinite(mk.forward(flat, sizes, x)).all()


def test_layer_sizes_rejects_layers_that_do_not_chain() -> None:
    np.testing.assert_array_equal(mk.layer_sizes([(16, 6), (3, 16)]), [6, 16, 3])
    with pytest.raises(ValueError, match="not a chain"):
        mk.layer_sizes([(16, 6), (3, 15)])


def test_make_engine_compiles_only_flat_float32_mlps_when_asked() -> None:
    plain = build_model(6, 3, (16,), seed=0)
    assert isinstance(make_engine(plain, jit=True), NumpyMLPEngine)  # parameters not one buffer
    flat_model, _, _ = _flat_model(6, 3, (16,))
    assert isinstance(make_engine(flat_model, jit=True), JitMLPEngine)
    assert type(make_engine(flat_model, jit=False)) is NumpyMLPEngine


def test_jit_engine_reads_the_live_weights_and_its_own_target_copy() -> None:
    model, _, _ = _flat_model(6, 3, (16, 16))
    engine = make_engine(model, jit=True)
    reference = NumpyMLPEngine(model)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(engine.online(x), reference.online(x), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        next(model.parameters()).mul_(2.0)  # a Hogwild write by another worker: seen at once
    np.testing.assert_allclose(engine.online(x), reference.online(x), rtol=1e-5, atol=1e-6)
    # the target copy changes only through target_arrays (TargetStore.read_into fills them)
    before = engine.target(x)
    for dst, src in zip(engine.target_arrays, model.parameters(), strict=True):
        dst[...] = src.detach().numpy()
    after = engine.target(x)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, engine.online(x), rtol=1e-6)
    # non-contiguous or float64 observations are accepted (converted)
    np.testing.assert_allclose(engine.online(x.astype(np.float64)[:, :]), engine.online(x), rtol=1e-6)
    np.testing.assert_allclose(engine.online(np.asfortranarray(x)), engine.online(x), rtol=1e-6)


def test_jit_engine_gradient_is_the_numpy_engines() -> None:
    model, _, _ = _flat_model(8, 4, (32, 32))
    jit_engine, np_engine = make_engine(model, jit=True), make_engine(model, jit=False)
    x, a, y = _batch(np.random.default_rng(2), 40, 8, 4)
    for loss in ("huber", "mse"):
        v1 = jit_engine.loss_and_grads(x, a, y, loss)
        v2 = np_engine.loss_and_grads(x, a, y, loss)
        assert v1 == pytest.approx(v2, rel=1e-5)
        np.testing.assert_allclose(jit_engine.grad_flat, np_engine.grad_flat, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="unknown loss"):
        jit_engine.loss_and_grads(x, a, y, "l1")


def _random_returns_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """A random segment for the returns kernels: rewards, terminated, done, bootstrap values, gamma."""
    T, K = int(rng.integers(1, 7)), int(rng.integers(1, 9))
    rewards = rng.normal(size=(T, K)).astype(np.float32)
    terminated = rng.random((T, K)) < 0.2
    done = terminated | (rng.random((T, K)) < 0.2)
    values = rng.normal(size=(T, K)).astype(np.float32)
    return rewards, terminated, done, values, float(rng.choice([0.5, 0.99, 0.995]))


def test_n_step_returns_are_the_numpy_returns_bit_for_bit() -> None:
    from asyncdqn.algo.targets import n_step_targets

    rng = np.random.default_rng(0)
    for _ in range(300):
        rewards, terminated, done, values, gamma = _random_returns_case(rng)
        got = mk.n_step_returns(rewards, terminated, done, values, np.float32(gamma))
        np.testing.assert_array_equal(got, n_step_targets(rewards, terminated, done, values, gamma))


def test_n_step_returns_by_hand() -> None:
    # one env, T = 3, gamma 0.5: r = 1, 2, 4; step 1 truncated with V(final) = 8, V(s_3) = 16
    rewards = np.array([[1.0], [2.0], [4.0]], dtype=np.float32)
    terminated = np.zeros((3, 1), dtype=bool)
    done = np.array([[False], [True], [False]])
    values = np.array([[0.0], [8.0], [16.0]], dtype=np.float32)
    got = mk.n_step_returns(rewards, terminated, done, values, np.float32(0.5))
    # R_2 = 4 + 0.5 * 16 = 12; R_1 = 2 + 0.5 * 8 = 6 (episode ended: no carry); R_0 = 1 + 0.5 * 6 = 4
    np.testing.assert_array_equal(got[:, 0], [4.0, 6.0, 12.0])
    terminated[1, 0] = True  # terminated instead: no bootstrap at step 1
    got = mk.n_step_returns(rewards, terminated, done, values, np.float32(0.5))
    np.testing.assert_array_equal(got[:, 0], [2.0, 2.0, 12.0])


@pytest.mark.parametrize("obs_dtype", [np.float32, np.uint8])
def test_record_step_fills_the_segment_buffers_and_the_episode_book(obs_dtype) -> None:
    T, K = 3, 4
    act_buf, rew_buf = np.zeros((T, K), dtype=np.int64), np.zeros((T, K), dtype=np.float32)
    term_buf, done_buf = np.zeros((T, K), dtype=bool), np.zeros((T, K), dtype=bool)
    obs_seq = np.zeros((T + 1, K, 2, 3), dtype=obs_dtype)
    ep_return, ep_len = np.array([1.0, 2.0, 3.0, 4.0]), np.array([5, 6, 7, 8])
    actions = np.array([3, 1, 0, 2])
    obs = (np.arange(K * 6).reshape(K, 2, 3) + 1).astype(obs_dtype)
    rewards = np.array([0.5, -1.0, 2.0, 0.0], dtype=np.float32)
    terminated, truncated = np.array([False, True, False, True]), np.array([False, False, True, True])
    ended = mk.record_step(1, actions, obs, rewards, terminated, truncated, act_buf, obs_seq, rew_buf, term_buf,
                            done_buf, ep_return, ep_len)
    assert ended == 3
    np.testing.assert_array_equal(act_buf[1], actions)
    np.testing.assert_array_equal(rew_buf[1], rewards)
    np.testing.assert_array_equal(term_buf[1], terminated)
    np.testing.assert_array_equal(done_buf[1], [False, True, True, True])
    np.testing.assert_array_equal(obs_seq[2], obs)
    assert not obs_seq[[0, 1, 3]].any() and not act_buf[[0, 2]].any() and not done_buf[[0, 2]].any()
    np.testing.assert_allclose(ep_return, [1.5, 1.0, 5.0, 4.0])
    np.testing.assert_array_equal(ep_len, [6, 7, 8, 9])


def _target_and_online() -> tuple[np.ndarray, np.ndarray, np.ndarray, NumpyMLP, NumpyMLP]:
    """Two 5-16-16-3 MLPs (target, online): their flat buffers, sizes, and numpy mirrors."""
    target_model, target_flat, sizes = _flat_model(5, 3, (16, 16), seed=1)
    online_model, online_flat, _ = _flat_model(5, 3, (16, 16), seed=2)
    target_net = NumpyMLP([p.detach().numpy() for p in target_model.parameters()])
    online_net = NumpyMLP([p.detach().numpy() for p in online_model.parameters()])
    return target_flat, online_flat, sizes, target_net, online_net


def _random_segment(rng: np.random.Generator) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A segment of T steps of K environments: final observations, rewards, terminated, done."""
    T, K = int(rng.integers(1, 6)), int(rng.integers(1, 9))
    final_obs = rng.normal(size=(T, K, 5)).astype(np.float32)
    rewards = rng.normal(size=(T, K)).astype(np.float32)
    terminated = rng.random((T, K)) < 0.2
    done = terminated | (rng.random((T, K)) < 0.3)
    return T, K, final_obs, rewards, terminated, done


@pytest.mark.parametrize("double_q", [False, True])
def test_n_step_q_targets_match_the_numpy_targets(double_q: bool) -> None:
    from asyncdqn.algo.targets import double_q_values, greedy_values, n_step_targets

    target_flat, online_flat, sizes, target_net, online_net = _target_and_online()
    rng = np.random.default_rng(4)
    n_bootstrapped = 0
    for _ in range(50):
        T, K, final_obs, rewards, terminated, done = _random_segment(rng)
        last_obs = rng.normal(size=(K, 5)).astype(np.float32)
        got = mk.n_step_q_targets(target_flat, online_flat, sizes, final_obs, last_obs, rewards, terminated, done,
                                   np.float32(0.9), double_q)
        truncated, tail = done & ~terminated, ~done[T - 1]
        rows = np.concatenate([final_obs[truncated], last_obs[tail]])
        values = np.zeros((T, K), dtype=np.float32)
        if len(rows):
            q = target_net(rows)
            v = double_q_values(q, online_net(rows)) if double_q else greedy_values(q)
            values[truncated] = v[:truncated.sum()]
            values[T - 1, tail] = v[truncated.sum():]
            n_bootstrapped += len(rows)
        np.testing.assert_allclose(got, n_step_targets(rewards, terminated, done, values, 0.9), rtol=1e-5, atol=1e-6)
    assert n_bootstrapped > 100  # the bootstraps were exercised, not only terminal steps


def test_scale_and_clip_is_clip_grad_norm() -> None:
    from asyncdqn.algo.mlp_grad import clip_grad_norm

    rng = np.random.default_rng(0)
    for scale, max_norm in [(1.0, 1.0), (40.0, 10.0), (1.0, 1e9), (0.5, np.inf)]:
        grad = rng.normal(size=1000).astype(np.float32)
        ref = grad * np.float32(scale)
        ref_norm = clip_grad_norm([ref], max_norm)
        norm = mk.scale_and_clip(grad, np.float32(scale), max_norm)
        assert norm == pytest.approx(ref_norm, rel=1e-5)
        np.testing.assert_allclose(grad, ref, rtol=1e-5)
        assert np.linalg.norm(grad) <= max_norm * (1 + 1e-5)


@pytest.mark.parametrize("ended", [False, True])
def test_record_and_act_is_record_step_then_act_drawn(ended: bool) -> None:
    _, flat, sizes = _flat_model(5, 3, (16, 16), seed=3)
    rng = np.random.default_rng(5)
    T, K = 3, 4
    obs = rng.normal(size=(K, 5)).astype(np.float32)
    actions, rewards = np.array([2, 0, 1, 1]), rng.normal(size=K).astype(np.float32)
    terminated, truncated = np.zeros(K, dtype=bool), np.array([False, ended, False, False])
    eps, uniforms, random_actions = np.full(K, 0.5), rng.random(K), rng.integers(0, 3, size=K)

    def buffers():
        return [np.zeros((T, K), dtype=np.int64), np.zeros((T + 1, K, 5), dtype=np.float32),
                np.zeros((T, K), dtype=np.float32), np.zeros((T, K), dtype=bool), np.zeros((T, K), dtype=bool),
                np.arange(K, dtype=np.float64), np.arange(K, dtype=np.int64)]

    want_bufs, got_bufs = buffers(), buffers()
    want_ended = mk.record_step(1, actions, obs, rewards, terminated, truncated, *want_bufs)
    n_ended, got_actions = mk.record_and_act(1, actions, obs, rewards, terminated, truncated, *got_bufs, flat, sizes,
                                              eps, uniforms, random_actions)
    assert n_ended == want_ended == int(ended)
    for got, want in zip(got_bufs, want_bufs, strict=True):
        np.testing.assert_array_equal(got, want)
    if ended:  # the caller closes the episode first, then acts: no actions yet
        assert got_actions.shape == (0,)
    else:
        np.testing.assert_array_equal(got_actions, mk.act_drawn(flat, sizes, obs, eps, uniforms, random_actions))
        assert (uniforms < eps).any() and (uniforms >= eps).any()  # both branches of epsilon-greedy taken


@pytest.mark.parametrize(("double_q", "huber", "scale", "max_norm"),
                         [(False, True, 1.0, np.inf), (True, True, 40.0, 10.0), (True, False, 1.0, 0.5)])
def test_n_step_q_learn_is_targets_gradient_and_clip(double_q: bool, huber: bool, scale: float,
                                                     max_norm: float) -> None:
    _, target_flat, sizes = _flat_model(5, 3, (16, 16), seed=1)
    _, flat, _ = _flat_model(5, 3, (16, 16), seed=2)
    rng = np.random.default_rng(6)
    T, K = 5, 8
    obs_seq = rng.normal(size=(T + 1, K, 5)).astype(np.float32)
    final_obs = rng.normal(size=(T, K, 5)).astype(np.float32)
    act_buf = rng.integers(0, 3, size=(T, K))
    rewards = (rng.normal(size=(T, K)) * 3).astype(np.float32)
    terminated = rng.random((T, K)) < 0.15
    done = terminated | (rng.random((T, K)) < 0.15)
    gamma = np.float32(0.9)
    y = mk.n_step_q_targets(target_flat, flat, sizes, final_obs, obs_seq[T], rewards, terminated, done, gamma,
                             double_q)
    want_grad = np.zeros_like(flat)
    want_loss = mk.td_loss_and_grad(flat, sizes, obs_seq[:T].reshape(T * K, 5), act_buf.reshape(T * K),
                                     y.reshape(T * K), huber, want_grad)
    mk.scale_and_clip(want_grad, np.float32(scale), max_norm)
    got_grad = np.full_like(flat, np.nan)  # every entry is written
    loss, max_abs = mk.n_step_q_learn(target_flat, flat, sizes, obs_seq, final_obs, act_buf, rewards, terminated,
                                       done, gamma, double_q, huber, got_grad, np.float32(scale), max_norm)
    assert loss == want_loss
    assert max_abs == pytest.approx(float(np.abs(rewards).max()))
    np.testing.assert_array_equal(got_grad, want_grad)
    assert np.abs(want_grad).sum() > 0


def test_lambda_returns_are_the_numpy_returns_bit_for_bit() -> None:
    from asyncdqn.algo.targets import lambda_targets

    rng = np.random.default_rng(1)
    for _ in range(300):
        rewards, terminated, done, values, gamma = _random_returns_case(rng)
        lam = float(rng.choice([0.0, 0.3, 0.65, 0.95, 1.0]))
        got = mk.lambda_returns(rewards, terminated, done, values, gamma, lam)
        np.testing.assert_array_equal(got, lambda_targets(rewards, terminated, done, values, gamma, lam))


def test_lambda_returns_by_hand() -> None:
    # one env, T = 3, gamma 0.5, lambda 0.5: r = 1, 2, 4; V(s_1) = 10, V(s_2) = 20, V(s_3) = 8
    rewards = np.array([[1.0], [2.0], [4.0]], dtype=np.float32)
    values = np.array([[10.0], [20.0], [8.0]], dtype=np.float32)
    flags = np.zeros((3, 1), dtype=bool)
    got = mk.lambda_returns(rewards, flags, flags, values, 0.5, 0.5)
    # G_2 = 4 + 0.5 * 8 = 8; G_1 = 2 + 0.5 (0.5 * 20 + 0.5 * 8) = 9; G_0 = 1 + 0.5 (0.5 * 10 + 0.5 * 9) = 5.75
    np.testing.assert_array_equal(got[:, 0], [5.75, 9.0, 8.0])
    done = np.array([[False], [True], [False]])  # truncated at step 1: G_1 = 2 + 0.5 * 20 = 12, G_0 = 6.5
    np.testing.assert_array_equal(mk.lambda_returns(rewards, flags, done, values, 0.5, 0.5)[:, 0], [6.5, 12.0, 8.0])


@pytest.mark.parametrize("double_q", [False, True])
def test_lambda_q_targets_match_the_numpy_targets(double_q: bool) -> None:
    from asyncdqn.algo.targets import double_q_values, greedy_values, lambda_targets

    target_flat, online_flat, sizes, target_net, online_net = _target_and_online()
    rng = np.random.default_rng(5)
    n_truncated = 0
    for _ in range(50):
        T, K, final_obs, rewards, terminated, done = _random_segment(rng)
        obs_seq = rng.normal(size=(T + 1, K, 5)).astype(np.float32)
        got = mk.lambda_q_targets(target_flat, online_flat, sizes, final_obs, obs_seq, rewards, terminated, done,
                                   0.9, 0.65, double_q)
        next_obs = obs_seq[1:].copy()
        next_obs[done] = final_obs[done]  # the true next states
        q = target_net(next_obs.reshape(T * K, 5))
        v = double_q_values(q, online_net(next_obs.reshape(T * K, 5))) if double_q else greedy_values(q)
        values = np.where(terminated, 0.0, v.reshape(T, K)).astype(np.float32)
        n_truncated += int((done & ~terminated).sum())
        np.testing.assert_allclose(got, lambda_targets(rewards, terminated, done, values, 0.9, 0.65), rtol=1e-5,
                                   atol=1e-6)
    assert n_truncated > 20  # final observations were bootstrapped from
