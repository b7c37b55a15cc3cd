"""Tests for asyncdqn.algo.optim: exact agreement with torch.optim, hand-computed
steps, an exactly-counted step under multi-process concurrency, checkpoints."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

from asyncdqn.algo.optim import SharedAdam, SharedRAdam, SharedRMSprop


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add overhead (and stall badly on a
    loaded machine). Restored afterwards for other test modules."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# Tight: the shared optimizers perform the same floating-point ops as torch's
# single-tensor implementations, so in practice results are bit-identical.
RTOL = 1e-6
ATOL = 1e-7


def _mlp(seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 4),
    ).to(dtype)


def _batches(n: int = 50, seed: int = 123) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 8, generator=g), torch.randn(16, 4, generator=g)) for _ in range(n)]


def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(model(x), y)


def _compare_with_torch(
    make_shared: Callable[[list[torch.nn.Parameter]], Any],
    make_ref: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    lrs: list[float] | None = None,
) -> None:
    """Run both optimizers on identical copies of one MLP over 50 batches and
    compare every parameter after every step."""
    m_shared, m_ref = _mlp(), _mlp()
    opt = make_shared(list(m_shared.parameters()))
    ref = make_ref(list(m_ref.parameters()))
    for k, (x, y) in enumerate(_batches()):
        opt.zero_grad()
        ref.zero_grad()
        _loss(m_shared, x, y).backward()
        _loss(m_ref, x, y).backward()
        if lrs is None:
            t = opt.step()
        else:
            for group in ref.param_groups:
                group["lr"] = lrs[k]
            t = opt.step(lr=lrs[k])
        ref.step()
        assert t == k + 1
        for p, q in zip(m_shared.parameters(), m_ref.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=RTOL, atol=ATOL, msg=lambda s, k=k: f"step {k + 1}: {s}")
    assert opt.step_count == 50
    # Make sure the run actually moved the parameters (not a vacuous comparison).
    assert not torch.equal(next(m_shared.parameters()), next(_mlp().parameters()))


def _varying_lrs(base: float) -> list[float]:
    return [base * (1.0 + 0.5 * ((k * 7) % 5)) / (1.0 + 0.05 * k) for k in range(50)]


# --------------------------------------------------------------------- Adam
def test_adam_matches_torch() -> None:
    _compare_with_torch(
        lambda ps: SharedAdam(ps, lr=1e-2),
        lambda ps: torch.optim.Adam(ps, lr=1e-2, foreach=False),
    )


def test_adam_matches_torch_custom_hparams() -> None:
    _compare_with_torch(
        lambda ps: SharedAdam(ps, lr=3e-3, betas=(0.8, 0.99), eps=1e-6),
        lambda ps: torch.optim.Adam(ps, lr=3e-3, betas=(0.8, 0.99), eps=1e-6, foreach=False),
    )


def test_adam_matches_torch_per_step_lr() -> None:
    _compare_with_torch(
        lambda ps: SharedAdam(ps, lr=123.0),  # default lr must be ignored when lr= is passed
        lambda ps: torch.optim.Adam(ps, lr=1e-2, foreach=False),
        lrs=_varying_lrs(1e-2),
    )


def test_adam_matches_torch_weight_decay() -> None:
    _compare_with_torch(
        lambda ps: SharedAdam(ps, lr=1e-2, weight_decay=0.1),
        lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.1, foreach=False),
    )


def test_adam_matches_torch_foreach_impl() -> None:
    # torch's multi-tensor implementation is mathematically the same; allow a
    # slightly looser tolerance in case its op order differs.
    m_shared, m_ref = _mlp(), _mlp()
    opt = SharedAdam(m_shared.parameters(), lr=1e-2)
    ref = torch.optim.Adam(m_ref.parameters(), lr=1e-2, foreach=True)
    for x, y in _batches(20):
        for mod, o in ((m_shared, opt), (m_ref, ref)):
            o.zero_grad()
            _loss(mod, x, y).backward()
            o.step()
    for p, q in zip(m_shared.parameters(), m_ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_adam_first_two_steps_by_hand() -> None:
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    p = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = SharedAdam([p], lr=lr, betas=(b1, b2), eps=eps)

    g1 = 0.5
    p.grad = torch.tensor([g1], dtype=torch.float64)
    assert opt.step() == 1
    m = (1 - b1) * g1  # 0.05
    v = (1 - b2) * g1**2  # 0.00025
    m_hat, v_hat = m / (1 - b1), v / (1 - b2)  # 0.5, 0.25 (bias corrected)
    expected = 1.0 - lr * m_hat / (v_hat**0.5 + eps)  # ~= 1 - lr * sign(g)
    assert abs(expected - 0.9) < 1e-7
    assert p.item() == pytest.approx(expected, rel=0, abs=1e-15)

    g2 = -2.0
    p.grad = torch.tensor([g2], dtype=torch.float64)
    assert opt.step() == 2
    m = b1 * m + (1 - b1) * g2
    v = b2 * v + (1 - b2) * g2**2
    m_hat, v_hat = m / (1 - b1**2), v / (1 - b2**2)
    expected = expected - lr * m_hat / (v_hat**0.5 + eps)
    assert p.item() == pytest.approx(expected, rel=0, abs=1e-15)
    st = opt.state_tensors()
    assert st["exp_avg.0"].item() == pytest.approx(m, abs=1e-15)
    assert st["exp_avg_sq.0"].item() == pytest.approx(v, abs=1e-15)


# ------------------------------------------------------------------ RMSprop
def test_rmsprop_matches_torch() -> None:
    _compare_with_torch(
        lambda ps: SharedRMSprop(ps),  # defaults: lr=7e-4, alpha=0.99, eps=0.1
        lambda ps: torch.optim.RMSprop(ps, lr=7e-4, alpha=0.99, eps=0.1, foreach=False),
    )


def test_rmsprop_defaults() -> None:
    opt = SharedRMSprop([torch.nn.Parameter(torch.zeros(2))])
    assert (opt.lr, opt.alpha, opt.eps, opt.weight_decay) == (7e-4, 0.99, 0.1, 0.0)
    a = SharedAdam([torch.nn.Parameter(torch.zeros(2))])
    assert (a.lr, a.betas, a.eps, a.weight_decay) == (1e-3, (0.9, 0.999), 1e-8, 0.0)


def test_rmsprop_matches_torch_small_eps_per_step_lr() -> None:
    _compare_with_torch(
        lambda ps: SharedRMSprop(ps, lr=0.5, alpha=0.9, eps=1e-5),
        lambda ps: torch.optim.RMSprop(ps, lr=1e-3, alpha=0.9, eps=1e-5, foreach=False),
        lrs=_varying_lrs(1e-3),
    )


def test_rmsprop_matches_torch_weight_decay() -> None:
    _compare_with_torch(
        lambda ps: SharedRMSprop(ps, lr=1e-2, weight_decay=0.05),
        lambda ps: torch.optim.RMSprop(ps, lr=1e-2, alpha=0.99, eps=0.1, weight_decay=0.05, foreach=False),
    )


def test_rmsprop_first_step_by_hand() -> None:
    lr, alpha, eps = 0.01, 0.99, 0.1
    p = torch.nn.Parameter(torch.tensor([2.0, -1.0], dtype=torch.float64))
    opt = SharedRMSprop([p], lr=lr, alpha=alpha, eps=eps)
    g = [3.0, -0.5]
    p.grad = torch.tensor(g, dtype=torch.float64)
    opt.step()
    for j, (p0, gj) in enumerate(zip([2.0, -1.0], g, strict=True)):
        s = (1 - alpha) * gj**2
        assert p[j].item() == pytest.approx(p0 - lr * gj / (s**0.5 + eps), rel=0, abs=1e-15)


# ----------------------------------------------------------- common behaviour
@pytest.mark.parametrize("cls", [SharedAdam, SharedRMSprop])
def test_grad_none_params_skipped_and_zero_grad(cls: type) -> None:
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(3))
    opt = cls([a, b], lr=0.1)
    a.grad = torch.ones(3)
    assert opt.step() == 1
    assert torch.all(a < 1.0)
    torch.testing.assert_close(b, torch.ones(3), rtol=0, atol=0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    assert opt.step() == 2  # still counts as a step, nothing moves
    assert opt.step_count == 2


@pytest.mark.parametrize("cls", [SharedAdam, SharedRMSprop])
def test_state_is_in_shared_memory(cls: type) -> None:
    opt = cls(_mlp().parameters(), lr=1e-3)
    assert opt._step.is_shared() and opt._step.dtype == torch.int64 and opt._step.shape == (1,)
    for tensors in opt._state.values():
        assert len(tensors) == 6
        assert all(t.is_shared() for t in tensors)
    names = set(opt.state_tensors())
    if cls is SharedAdam:
        assert names == {"step"} | {f"exp_avg.{i}" for i in range(6)} | {f"exp_avg_sq.{i}" for i in range(6)}
    else:
        assert names == {"step"} | {f"square_avg.{i}" for i in range(6)}


@pytest.mark.parametrize("cls", [SharedAdam, SharedRMSprop])
def test_state_round_trip(cls: type) -> None:
    batches = _batches(12)
    model = _mlp()
    opt = cls(model.parameters(), lr=1e-2)
    for x, y in batches[:6]:
        opt.zero_grad()
        _loss(model, x, y).backward()
        opt.step()
    saved = opt.state_tensors()
    # Snapshot is a copy: later steps must not mutate it.
    saved_copy = {k: v.clone() for k, v in saved.items()}

    model2 = _mlp(seed=99)
    model2.load_state_dict(model.state_dict())
    opt2 = cls(model2.parameters(), lr=1e-2)
    shared_before = [t.data_ptr() for ts in opt2._state.values() for t in ts]
    opt2.load_state_tensors(saved)
    assert [t.data_ptr() for ts in opt2._state.values() for t in ts] == shared_before  # copied in place
    assert all(t.is_shared() for ts in opt2._state.values() for t in ts)
    assert opt2.step_count == 6

    for x, y in batches[6:]:
        for mod, o in ((model, opt), (model2, opt2)):
            o.zero_grad()
            _loss(mod, x, y).backward()
        assert opt.step() == opt2.step()
        for p, q in zip(model.parameters(), model2.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
    for k, v in saved.items():
        torch.testing.assert_close(v, saved_copy[k], rtol=0, atol=0)


@pytest.mark.parametrize("cls", [SharedAdam, SharedRMSprop])
def test_load_state_errors(cls: type) -> None:
    opt = cls(_mlp().parameters(), lr=1e-2)
    good = opt.state_tensors()
    key = "exp_avg_sq.2" if cls is SharedAdam else "square_avg.2"

    bad = dict(good)
    bad[key] = torch.zeros(5, 5)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        opt.load_state_tensors(bad)

    bad = dict(good)
    del bad[key]
    bad["bogus.0"] = torch.zeros(1)
    with pytest.raises(ValueError, match="missing.*" + key.replace(".", r"\.")) as ei:
        opt.load_state_tensors(bad)
    assert "bogus.0" in str(ei.value)

    # Nothing was modified by the failed loads.
    bad = {k: v + 1 for k, v in good.items()}
    bad[key] = torch.zeros(3)
    with pytest.raises(ValueError):
        opt.load_state_tensors(bad)
    assert opt.step_count == 0
    assert all(torch.count_nonzero(v) == 0 for v in opt.state_tensors().values())


def test_constructor_validation() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError):
        SharedAdam([])
    with pytest.raises(ValueError):
        SharedAdam([p, p])
    with pytest.raises(ValueError):
        SharedAdam([p], lr=-1.0)
    with pytest.raises(ValueError):
        SharedAdam([p], betas=(1.0, 0.999))
    with pytest.raises(ValueError):
        SharedRMSprop([p], alpha=1.5)
    with pytest.raises(ValueError):
        SharedRMSprop([p], eps=-0.1)


# --------------------------------------------------------------- concurrency
N_WORKERS = 3
K_STEPS = 200  # steps on each shared MLP optimizer, per worker
K_TINY = 2000  # steps on each 1-element optimizer, per worker: the counter's
# critical section is then a large share of each step, so a missing lock or a
# non-atomic increment shows up as duplicated / lost t values.


def _concurrent_worker(cases: list[tuple[Any, ...]], row: int, start: Any) -> None:
    """Child-process target (module level so spawn can import it).

    ``cases`` holds, per optimizer class, ``(model, opt, ts, tiny_param,
    tiny_opt, ts_tiny)``, all pickled in one args tuple. Gradients are set on
    the *model's* parameters: this only moves anything if pickle kept the
    optimizer's params identical to the model's. Each returned t is written
    into this worker's own row of ``ts`` / ``ts_tiny``.
    """
    torch.set_num_threads(1)
    for model, opt, _, tiny_param, tiny_opt, _ in cases:
        params = list(model.parameters())
        assert all(a is b for a, b in zip(params, opt.params, strict=True)), "parameter identity lost in pickling"
        assert tiny_opt.params[0] is tiny_param
        for p in params:
            p.grad = torch.full_like(p, 0.01)
        tiny_param.grad = torch.ones_like(tiny_param)
    start.wait(timeout=30)  # maximise overlap between the workers
    for _, opt, ts, _, tiny_opt, ts_tiny in cases:
        for k in range(ts.shape[1]):
            ts[row, k] = opt.step()
        for k in range(ts_tiny.shape[1]):
            ts_tiny[row, k] = tiny_opt.step(lr=1e-6)


def test_concurrent_step_count_exact() -> None:
    ctx = multiprocessing.get_context("spawn")
    cases: list[tuple[Any, ...]] = []
    inits: list[list[torch.Tensor]] = []
    for cls in (SharedAdam, SharedRMSprop):
        model = _mlp()
        model.share_memory()
        inits.append([p.detach().clone() for p in model.parameters()])
        opt = cls(model.parameters(), lr=1e-3)
        opt.step()  # one step in the parent first: children must continue from t=1
        ts = torch.zeros(N_WORKERS, K_STEPS, dtype=torch.int64).share_memory_()
        tiny_param = torch.nn.Parameter(torch.zeros(1))
        tiny_param.share_memory_()
        tiny_opt = cls([tiny_param], lr=1e-6)
        ts_tiny = torch.zeros(N_WORKERS, K_TINY, dtype=torch.int64).share_memory_()
        cases.append((model, opt, ts, tiny_param, tiny_opt, ts_tiny))
    start = ctx.Event()
    procs = [ctx.Process(target=_concurrent_worker, args=(cases, w, start), daemon=True) for w in range(N_WORKERS)]
    for pr in procs:
        pr.start()
    try:
        start.set()
        deadline = time.monotonic() + 60
        for pr in procs:
            pr.join(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        for pr in procs:
            if pr.is_alive():
                pr.kill()
                pr.join()
    assert [pr.exitcode for pr in procs] == [0] * N_WORKERS

    for (model, opt, ts, tiny_param, tiny_opt, ts_tiny), init in zip(cases, inits, strict=True):
        name = type(opt).__name__
        total = 1 + N_WORKERS * K_STEPS
        assert opt.step_count == total, name
        assert sorted(ts.flatten().tolist()) == list(range(2, total + 1)), name  # unique, no gaps
        # Each worker saw strictly increasing t values.
        assert all(torch.all(ts[w, 1:] > ts[w, :-1]) for w in range(N_WORKERS)), name
        # Children's updates landed in the parent's (shared) parameters and state.
        for p, p0 in zip(model.parameters(), init, strict=True):
            assert torch.isfinite(p).all(), name
            assert torch.all(p < p0), name  # positive gradient everywhere -> every element decreased
        state = opt.state_tensors()
        assert all(torch.all(v > 0) for k, v in state.items() if k != "step"), name
        assert opt.step() == total + 1, name  # parent continues the shared count

        assert tiny_opt.step_count == N_WORKERS * K_TINY, name
        assert sorted(ts_tiny.flatten().tolist()) == list(range(1, N_WORKERS * K_TINY + 1)), name
        assert tiny_param.item() < 0.0, name


def test_step_follows_parameters_moved_to_shared_memory_after_construction() -> None:
    """The numpy fast path views parameters at every step, so moving their storage is safe."""
    model = torch.nn.Linear(3, 2)
    opt = SharedAdam(model.parameters(), lr=0.1)
    model.share_memory()  # moves the parameters' storage after the optimizer was built
    before = model.weight.detach().clone()
    model.weight.grad = torch.ones_like(model.weight)
    model.bias.grad = torch.ones_like(model.bias)
    opt.step()
    # Adam's first step moves every weight by -lr * sign(g) (up to eps)
    torch.testing.assert_close(model.weight.detach(), before - 0.1, rtol=0, atol=1e-6)


# ------------------------------------------------- flat fast path (one buffer for all parameters)
def _compare_flat_with_torch(make_shared: Callable[[list[torch.nn.Parameter]], Any],
                             make_ref: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
                             rtol: float = RTOL, atol: float = ATOL) -> None:
    """Parameters flattened into one buffer and gradients handed over as views of one flat
    buffer (as the workers do): the single-pass update must still match torch.optim."""
    from asyncdqn.model import flatten_parameters

    m_shared, m_ref = _mlp(), _mlp()
    flatten_parameters(m_shared)
    m_shared.share_memory()
    ps = list(m_shared.parameters())
    opt = make_shared(ps)
    ref = make_ref(list(m_ref.parameters()))
    flat_grad = torch.zeros(sum(p.numel() for p in ps))
    views, offset = [], 0
    for p in ps:
        views.append(flat_grad[offset:offset + p.numel()].view(p.shape))
        offset += p.numel()
    for k, (x, y) in enumerate(_batches()):
        for p in ps:
            p.grad = None
        ref.zero_grad()
        _loss(m_shared, x, y).backward()
        for p, v in zip(ps, views, strict=True):
            v.copy_(p.grad)
            p.grad = v
        _loss(m_ref, x, y).backward()
        opt.step()
        ref.step()
        assert opt._flat_views() is not None  # the single-pass path ran
        for p, q in zip(m_shared.parameters(), m_ref.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=rtol, atol=atol, msg=lambda s, k=k: f"step {k + 1}: {s}")
    assert not torch.equal(next(m_shared.parameters()), next(_mlp().parameters()))


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_flat_path_is_torchs_fused_adam_bit_for_bit(weight_decay: float) -> None:
    # the flat path runs torch's fused CPU kernel with the shared global step: the same bits as
    # torch.optim.Adam(fused=True) (and within float32 rounding of the unfused Adam: the tests below)
    _compare_flat_with_torch(lambda ps: SharedAdam(ps, lr=1e-2, weight_decay=weight_decay),
                             lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=weight_decay, fused=True),
                             rtol=0.0, atol=0.0)


def test_adam_flat_path_matches_torch() -> None:
    _compare_flat_with_torch(lambda ps: SharedAdam(ps, lr=1e-2),
                             lambda ps: torch.optim.Adam(ps, lr=1e-2, foreach=False))


def test_adam_flat_path_matches_torch_weight_decay() -> None:
    _compare_flat_with_torch(lambda ps: SharedAdam(ps, lr=1e-2, weight_decay=0.1),
                             lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.1, foreach=False))


def test_rmsprop_flat_path_matches_torch() -> None:
    _compare_flat_with_torch(lambda ps: SharedRMSprop(ps, lr=1e-2, alpha=0.9, eps=1e-3, weight_decay=0.05),
                             lambda ps: torch.optim.RMSprop(ps, lr=1e-2, alpha=0.9, eps=1e-3, weight_decay=0.05,
                                                            foreach=False))


def test_flat_path_not_used_for_separate_tensors() -> None:
    m = _mlp()
    opt = SharedAdam(m.parameters(), lr=1e-2)
    x, y = _batches(1)[0]
    _loss(m, x, y).backward()  # autograd's own, separate gradient tensors
    opt.step()
    assert opt._flat_views() is None  # falls back to one update per parameter


def test_flatten_parameters_keeps_values_and_objects_and_shares_one_buffer() -> None:
    from asyncdqn.model import flatten_parameters

    m = _mlp(3)
    before = [(p, p.detach().clone()) for p in m.parameters()]
    flat = flatten_parameters(m)
    m.share_memory()
    ps = list(m.parameters())
    assert [id(p) for p in ps] == [id(p) for p, _ in before]
    for p, (_, v) in zip(ps, before, strict=True):
        torch.testing.assert_close(p, v, rtol=0, atol=0)
        assert p.is_shared() and p.untyped_storage().data_ptr() == ps[0].untyped_storage().data_ptr()
    assert flat.numel() == sum(p.numel() for p in ps)
    ends = [p.data_ptr() + p.numel() * p.element_size() for p in ps]
    assert [p.data_ptr() for p in ps[1:]] == ends[:-1]  # laid out one after the other


# -------------------------------------------------------------------- RAdam
# torch orders RAdam's scalar factors differently (bias-corrected m * lr * adaptive rate * rectifier, each
# an elementwise pass), so agreement is within float32 rounding, not bit for bit.
RADAM_RTOL, RADAM_ATOL = 1e-5, 1e-6


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_radam_matches_torch(weight_decay: float) -> None:
    # 50 steps: the first 5 are momentum SGD (rho_t <= 5 while beta2**t is young), the rest rectified
    # (the flat path: parameters and gradients in one buffer each, as every worker's)
    _compare_flat_with_torch(lambda ps: SharedRAdam(ps, lr=1e-2, weight_decay=weight_decay),
                             lambda ps: torch.optim.RAdam(ps, lr=1e-2, weight_decay=weight_decay, foreach=False),
                             rtol=RADAM_RTOL, atol=RADAM_ATOL)


def test_radam_per_parameter_path_matches_torch() -> None:
    m_shared, m_ref = _mlp(), _mlp()
    opt = SharedRAdam(m_shared.parameters(), lr=1e-2, betas=(0.8, 0.99), eps=1e-6)
    ref = torch.optim.RAdam(m_ref.parameters(), lr=1e-2, betas=(0.8, 0.99), eps=1e-6, foreach=False)
    for k, (x, y) in enumerate(_batches()):
        for mod, o in ((m_shared, opt), (m_ref, ref)):
            o.zero_grad()
            _loss(mod, x, y).backward()
        lr = _varying_lrs(1e-2)[k]
        for group in ref.param_groups:
            group["lr"] = lr
        assert opt.step(lr=lr) == k + 1
        ref.step()
        assert opt._flat_views() is None  # autograd's separate gradients: one update per parameter
        for p, q in zip(m_shared.parameters(), m_ref.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=RADAM_RTOL, atol=RADAM_ATOL)
    assert not torch.equal(next(m_shared.parameters()), next(_mlp().parameters()))


def test_radam_first_steps_by_hand() -> None:
    # One weight, g = 1 every step, lr 0.1, betas (0.9, 0.999), eps 0: m_t = 1 - 0.9^t = bias_correction1,
    # v_t = 1 - 0.999^t = bias_correction2. rho_oo = 2 / 0.001 - 1 = 1999, rho_t = 1999 - 2t 0.999^t / v_t:
    #   rho_1..5 = 1.0, 2.0, 3.0, 4.0, 4.996 <= 5: momentum SGD, p -= 0.1 * m_t / (1 - 0.9^t) = 0.1 each step
    #   rho_6 = 5.9942 > 5: rectified, r_6 = sqrt(1.9942 * 3.9942 * 1999 / (1995 * 1997 * 5.9942)) = 0.025821,
    #   p -= 0.1 * r_6 * sqrt(v_6) / m_6 * m_6 / sqrt(v_6) = 0.1 * r_6 = 0.0025821
    w = torch.nn.Parameter(torch.zeros(1))
    opt = SharedRAdam([w], lr=0.1, eps=0.0)
    values = []
    for _ in range(6):
        w.grad = torch.ones(1)
        opt.step()
        values.append(float(w.detach()))
    np.testing.assert_allclose(values[:5], [-0.1, -0.2, -0.3, -0.4, -0.5], rtol=1e-6)
    assert values[5] - values[4] == pytest.approx(-0.0025821, rel=1e-4)
