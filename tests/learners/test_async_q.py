"""The ActorLearner run in-process with the real shared objects.

Uses the deterministic chain environment of ``chain_env`` (position +1 per step,
whatever the action) so that buffers, episode ends and TD targets are known by
hand. To make Q known, every parameter of the Q-network is set to zero except a
few chosen ones (see `set_q`): with one hidden layer of 4 ReLU units,

    Q(s, a) = bias[a] + slope[a] * relu(s)        (s >= 0 on the chain)

so with slope = 0, Q(s, a) = bias[a] for every state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import chain_env  # noqa: F401  (registers the test environments; tests/conftest.py puts it on sys.path)
from asyncdqn.backends.base import ListSink
from asyncdqn.backends.shared import build_shared
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.episodes import EpisodeRecord
from asyncdqn.learners.async_q import ActorLearner
from chain_env import CHAIN_ID, LONG_ID, RAMP_ID

# Greedy policy, no exploration: eps_start 0 and the only final epsilon 0.
NO_EXPLORE = {"eps_start": 0.0, "final_epsilons": [0.0], "final_epsilon_probs": [1.0]}


def make_cfg(**overrides: Any):
    base = {
        "env_id": CHAIN_ID,
        "backend": "serial",
        "workers": 1,
        "envs_per_worker": 1,
        "t_max": 4,
        "hidden_sizes": [4],
        "gamma": 0.5,
        "seed": 0,
        "max_steps": 10_000,
        "target_update_steps": 1_000_000,
        "progress": False,
    }
    base.update(overrides)
    return resolve_config(base)


def make_shared(cfg):
    shared = build_shared(cfg, inspect_env(cfg.env_id, cfg.max_episode_steps))
    shared.target.sync_from(shared.model, 0)
    return shared


def make_worker(cfg, shared, index: int = 0, sink: ListSink | None = None) -> ActorLearner:
    return ActorLearner(cfg, index, shared.model, shared.optimizer, shared.target, shared.counter,
                        sink if sink is not None else ListSink())


def set_q(model: torch.nn.Module, bias, slope=(0.0, 0.0)) -> None:
    """In place (the worker acts on views of these tensors): Q(s, a) = bias[a] + slope[a] * relu(s).

    Needs hidden_sizes == (4,): model.q = Linear(1, 4), ReLU, Linear(4, 2)."""
    first, last = model.q[0], model.q[2]
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        first.weight[0, 0] = 1.0  # hidden unit 0 = relu(s)
        last.weight[:, 0] = torch.tensor(slope, dtype=torch.float32)
        last.bias.copy_(torch.tensor(bias, dtype=torch.float32))


def known_q_worker(cfg, online_bias, target_bias, online_slope=(0.0, 0.0), target_slope=(0.0, 0.0),
                   sink: ListSink | None = None):
    """Shared objects whose target net is Q_target and whose online net is Q_online, and a worker."""
    shared = build_shared(cfg, inspect_env(cfg.env_id, cfg.max_episode_steps))
    set_q(shared.model, target_bias, target_slope)
    shared.target.sync_from(shared.model, 0)
    set_q(shared.model, online_bias, online_slope)
    worker = make_worker(cfg, shared, sink=sink)
    return shared, worker


def params(model: torch.nn.Module) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.parameters()]


def assert_params_equal(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=False):
        np.testing.assert_array_equal(x, y)


def run_segments(cfg, segments: int) -> tuple[str, np.ndarray, list[np.ndarray], float]:
    """One worker on fresh shared state runs `segments` segments: its engine's class name, the actions
    of every segment, the final weights and the last update's loss."""
    shared = make_shared(cfg)
    worker = make_worker(cfg, shared)
    actions = []
    for _ in range(segments):
        worker.run_segment()
        actions.append(worker.act_buf.copy())
    return type(worker.engine).__name__, np.array(actions), params(shared.model), worker.last_loss


def params_differ(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(a, b, strict=False))


# ======================================================= target network syncs
def test_target_sync_once_per_multiple_and_frozen_between_syncs():
    # Segment = t_max * K = 3 * 2 = 6 steps; N = 10 is not a multiple of 6.
    # Global step after segment i: 6, 12, ..., 60.
    # Multiples 10, 20, 30, 40, 50, 60 are first reached at 12, 24, 30, 42, 54, 60.
    cfg = make_cfg(env_id=LONG_ID, t_max=3, envs_per_worker=2, target_update_steps=10,
                   hidden_sizes=[8], lr=1e-2)
    shared = make_shared(cfg)
    assert shared.target.syncs == 1 and shared.target.last_sync_step == 0
    worker = make_worker(cfg, shared)

    expected_steps = [6, 12, 18, 24, 30, 36, 42, 48, 54, 60]
    expected_syncs = [0, 1, 1, 2, 3, 3, 4, 4, 5, 6]  # == step // 10
    expected_last = [0, 12, 12, 24, 30, 30, 42, 42, 54, 60]

    snapshot = params(shared.target.model)  # target as of the last sync
    online_before = params(shared.model)
    for i in range(10):
        assert worker.run_segment() == 6
        assert shared.counter.value == expected_steps[i]
        assert shared.target.syncs - 1 == expected_syncs[i] == expected_steps[i] // 10
        assert shared.target.last_sync_step == expected_last[i]
        online_now = params(shared.model)
        assert params_differ(online_now, online_before), "the online model should learn every segment"
        synced_now = expected_syncs[i] != (expected_syncs[i - 1] if i else 0)
        if synced_now:
            # the target is a copy of the online model at the end of this segment
            assert_params_equal(params(shared.target.model), online_now)
            assert params_differ(params(shared.target.model), snapshot)
            snapshot = params(shared.target.model)
        else:
            # unchanged since the last sync, though the online model moved
            assert_params_equal(params(shared.target.model), snapshot)
            assert params_differ(online_now, snapshot)
        online_before = online_now


def test_target_sync_exact_with_two_workers_sharing_the_counter():
    # Two workers alternate; each segment adds 2*3 = 6 steps to the one global count.
    cfg = make_cfg(env_id=LONG_ID, t_max=3, envs_per_worker=2, target_update_steps=10, workers=2)
    shared = make_shared(cfg)
    w0, w1 = make_worker(cfg, shared, 0), make_worker(cfg, shared, 1)
    for _ in range(5):
        w0.run_segment()
        w1.run_segment()
    # 10 segments -> 60 steps -> multiples 10..60: 6 syncs, the last at step 60
    assert shared.counter.value == 60
    assert shared.counter.per_worker() == [30, 30]
    assert shared.target.syncs - 1 == 6
    assert shared.target.last_sync_step == 60


# ================================================== local target copy refresh
class CountingReads:
    """Wraps SharedTarget.read_into on one instance to count the worker's refreshes."""

    def __init__(self, target) -> None:
        self.calls = 0
        self._orig = target.read_into

        def read_into(arrays):
            self.calls += 1
            return self._orig(arrays)

        target.read_into = read_into


def test_local_target_refreshed_only_when_version_changes():
    cfg = make_cfg(env_id=LONG_ID, t_max=3, envs_per_worker=2, target_update_steps=10, hidden_sizes=[8])
    shared = make_shared(cfg)
    reads = CountingReads(shared.target)
    worker = make_worker(cfg, shared)
    # Syncs happen at the END of segments 2, 4, 5, 7, 9, 10 (see the test above), so
    # the worker reads the target at the START of segments 1 (first read), 3, 5, 6, 8, 10.
    expected_reads = [1, 1, 2, 2, 3, 4, 4, 5, 5, 6]
    for i in range(10):
        version_before = shared.target.version
        target_before = params(shared.target.model)
        worker.run_segment()
        assert reads.calls == expected_reads[i], i
        # the local copy is the shared target as it was at the start of the segment
        assert worker._target_version == version_before
        assert_params_equal(worker._target_arrays, target_before)


def test_local_target_not_reread_without_version_bump():
    cfg = make_cfg(env_id=LONG_ID, t_max=3, envs_per_worker=2)  # N = 1e6: no sync in the test
    shared = make_shared(cfg)
    reads = CountingReads(shared.target)
    worker = make_worker(cfg, shared)
    for _ in range(3):
        worker.run_segment()
    assert reads.calls == 1
    local = params(shared.target.model)
    assert_params_equal(worker._target_arrays, local)

    # Writing the shared target behind the store's back (no version bump) is not picked up...
    with torch.no_grad():
        for p in shared.target.model.parameters():
            p.add_(1.0)
    worker.run_segment()
    assert reads.calls == 1
    assert_params_equal(worker._target_arrays, local)

    # ...a sync (version bump) is, exactly once.
    shared.target.sync_from(shared.model, shared.counter.value)
    worker.run_segment()
    assert reads.calls == 2
    assert_params_equal(worker._target_arrays, params(shared.target.model))
    worker.run_segment()
    assert reads.calls == 2


# ============================================ termination / truncation, targets
# Chain of length 3, t_max 4, one env: positions 0->1->2->3 (terminated; final obs 3,
# reset to 0), 0->1. Reward 1 per step.
#   next_obs = [1, 2, 3, 1], term = done = [F, F, T, F]
# Long chain truncated by max_episode_steps=2: 0->1->2 (truncated; final obs 2), 0->1->2 (truncated).
#   next_obs = [1, 2, 1, 2], term = [F]*4, done = [F, T, F, T]


def check_terminated_buffers(worker) -> None:
    np.testing.assert_array_equal(worker.obs_buf[:, 0, 0], [0, 1, 2, 0])
    np.testing.assert_array_equal(worker.next_obs_buf[:, 0, 0], [1, 2, 3, 1])  # 3, not the reset 0
    np.testing.assert_array_equal(worker.rew_buf[:, 0], [1, 1, 1, 1])
    np.testing.assert_array_equal(worker.term_buf[:, 0], [False, False, True, False])
    np.testing.assert_array_equal(worker.done_buf[:, 0], [False, False, True, False])
    np.testing.assert_array_equal(worker.obs[:, 0], [1])


def check_truncated_buffers(worker) -> None:
    np.testing.assert_array_equal(worker.obs_buf[:, 0, 0], [0, 1, 0, 1])
    np.testing.assert_array_equal(worker.next_obs_buf[:, 0, 0], [1, 2, 1, 2])  # 2, not the reset 0
    np.testing.assert_array_equal(worker.rew_buf[:, 0], [1, 1, 1, 1])
    np.testing.assert_array_equal(worker.term_buf[:, 0], [False, False, False, False])
    np.testing.assert_array_equal(worker.done_buf[:, 0], [False, True, False, True])
    np.testing.assert_array_equal(worker.obs[:, 0], [0])


def targets_col(worker) -> np.ndarray:
    out = worker.targets()
    assert out.shape == (worker.T, worker.K)
    return out[:, 0]


def test_n_step_q_terminated_through_worker():
    # Q_target(s, .) = [5, 2] for every s: V = max = 5. gamma 0.5.
    # t=3: 1 + 0.5*5 = 3.5 ; t=2: terminated -> 1 ; t=1: 1 + 0.5*1 = 1.5 ; t=0: 1 + 0.5*1.5 = 1.75
    cfg = make_cfg(algo="n-step-q", **NO_EXPLORE)
    _shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[5.0, 2.0])
    worker.run_segment()
    check_terminated_buffers(worker)
    np.testing.assert_allclose(targets_col(worker), [1.75, 1.5, 1.0, 3.5], rtol=1e-6)


def test_n_step_q_truncated_through_worker_constant_q():
    # V = 5 everywhere. t=3: truncated -> 1 + 0.5*5 = 3.5 ; t=2: 1 + 0.5*3.5 = 2.75 ;
    # t=1: truncated -> 3.5 ; t=0: 2.75
    cfg = make_cfg(env_id=LONG_ID, max_episode_steps=2, algo="n-step-q", **NO_EXPLORE)
    _shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[5.0, 2.0])
    worker.run_segment()
    check_truncated_buffers(worker)
    np.testing.assert_allclose(targets_col(worker), [2.75, 3.5, 2.75, 3.5], rtol=1e-6)


def test_n_step_q_truncated_bootstraps_from_final_observation():
    # State-dependent target: Q_target(s, .) = [0, 2s] -> V(s) = 2s: V(1) = 2, V(2) = 4, V(0) = 0.
    # t=3: truncated, final obs 2: 1 + 0.5*4 = 3   (the reset obs 0 would give 1)
    # t=2: 1 + 0.5*3 = 2.5 ; t=1: truncated, final obs 2: 3 ; t=0: 2.5
    cfg = make_cfg(env_id=LONG_ID, max_episode_steps=2, algo="n-step-q", **NO_EXPLORE)
    _shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[0.0, 0.0],
                                    target_slope=[0.0, 2.0])
    worker.run_segment()
    check_truncated_buffers(worker)
    np.testing.assert_allclose(targets_col(worker), [2.5, 3.0, 2.5, 3.0], rtol=1e-6)


def test_n_step_q_ramp_rewards_terminated():
    # ChainRamp: reward = position reached: [1, 2, 3, 1]; terminated at t=2. V = 5.
    # t=3: 1 + 0.5*5 = 3.5 ; t=2: 3 ; t=1: 2 + 0.5*3 = 3.5 ; t=0: 1 + 0.5*3.5 = 2.75
    cfg = make_cfg(env_id=RAMP_ID, algo="n-step-q", **NO_EXPLORE)
    _shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[5.0, 2.0])
    worker.run_segment()
    np.testing.assert_array_equal(worker.rew_buf[:, 0], [1, 2, 3, 1])
    np.testing.assert_allclose(targets_col(worker), [2.75, 3.5, 3.0, 3.5], rtol=1e-6)


def test_one_step_q_terminated_and_truncated_through_worker():
    # V = 5: terminated chain -> [1+2.5, 3.5, 1, 3.5]
    cfg = make_cfg(algo="one-step-q", **NO_EXPLORE)
    _shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[5.0, 2.0])
    worker.run_segment()
    check_terminated_buffers(worker)
    np.testing.assert_allclose(targets_col(worker), [3.5, 3.5, 1.0, 3.5], rtol=1e-6)

    # Truncated, V(s) = 2s: next obs [1, 2, 1, 2] -> [1+1, 1+2, 1+1, 1+2] = [2, 3, 2, 3]
    cfg = make_cfg(env_id=LONG_ID, max_episode_steps=2, algo="one-step-q", **NO_EXPLORE)
    _shared, worker = known_q_worker(cfg, online_bias=[0.0, 1.0], target_bias=[0.0, 0.0],
                                    target_slope=[0.0, 2.0])
    worker.run_segment()
    check_truncated_buffers(worker)
    np.testing.assert_allclose(targets_col(worker), [2.0, 3.0, 2.0, 3.0], rtol=1e-6)


# Sarsa / double-Q with a state-dependent online net:
#   Q_online(s, .) = [0.5, s]   -> greedy action 0 at s = 0, action 1 at s >= 1
#   Q_target(s, .) = [3, s]     -> max = 3 for s <= 3
ONLINE = dict(online_bias=[0.5, 0.0], online_slope=[0.0, 1.0])
TARGET = dict(target_bias=[3.0, 0.0], target_slope=[0.0, 1.0])


def test_one_step_sarsa_truncated_uses_action_in_final_state():
    # Truncated long chain: obs [0, 1, 0, 1] -> actions [0, 1, 0, 1];
    # next obs [1, 2, 1, 2] (2 = final obs of the truncated episodes) -> a' = [1, 1, 1, 1]
    # (the reset obs 0 would give a' = 0). V = Q_target(s', a') = s' = [1, 2, 1, 2]
    # targets = 1 + 0.5*V = [1.5, 2, 1.5, 2]
    # (greedy max would be [2.5]*4; a' = 0 at the final state would give 2.5 at t=1, 3)
    cfg = make_cfg(env_id=LONG_ID, max_episode_steps=2, algo="one-step-sarsa", **NO_EXPLORE)
    _shared, worker = known_q_worker(cfg, **ONLINE, **TARGET)
    worker.run_segment()
    check_truncated_buffers(worker)
    np.testing.assert_array_equal(worker.act_buf[:, 0], [0, 1, 0, 1])
    np.testing.assert_array_equal(worker.next_act_buf[:, 0], [1, 1, 1, 1])
    np.testing.assert_allclose(targets_col(worker), [1.5, 2.0, 1.5, 2.0], rtol=1e-6)


def test_one_step_sarsa_terminated():
    # Chain of 3: obs [0, 1, 2, 0] -> actions [0, 1, 1, 0]; a' = next action taken:
    # [1, 1, 0 (in the reset state; irrelevant), 1 (at obs 1, the first action of the next segment)]
    # V = Q_target(s', a'): s'=1,a'=1 -> 1 ; s'=2,a'=1 -> 2 ; terminated ; s'=1 -> 1
    # targets = [1 + 0.5, 1 + 1, 1, 1 + 0.5] = [1.5, 2, 1, 1.5]
    cfg = make_cfg(algo="one-step-sarsa", **NO_EXPLORE)
    _shared, worker = known_q_worker(cfg, **ONLINE, **TARGET)
    worker.run_segment()
    check_terminated_buffers(worker)
    np.testing.assert_array_equal(worker.act_buf[:, 0], [0, 1, 1, 0])
    np.testing.assert_array_equal(worker.next_act_buf[:, 0], [1, 1, 0, 1])
    np.testing.assert_allclose(targets_col(worker), [1.5, 2.0, 1.0, 1.5], rtol=1e-6)


def test_double_q_through_worker():
    # Terminated chain, next obs [1, 2, 3, 1]: online argmax is action 1 at each (0.5 < s);
    # V = Q_target(s', 1) = s' = [1, 2, (3, terminated), 1]
    # one-step targets = [1 + 0.5, 1 + 1, 1, 1 + 0.5] = [1.5, 2, 1, 1.5]
    # (plain max would use V = 3: [2.5, 2.5, 1, 2.5])
    cfg = make_cfg(algo="one-step-q", double_q=True, **NO_EXPLORE)
    shared, worker = known_q_worker(cfg, **ONLINE, **TARGET)
    worker.run_segment()
    check_terminated_buffers(worker)
    set_q(shared.model, bias=[0.5, 0.0], slope=[0.0, 1.0])  # undo the learning step: ONLINE again
    np.testing.assert_allclose(targets_col(worker), [1.5, 2.0, 1.0, 1.5], rtol=1e-6)

    # Same buffers without double-Q: max = 3 -> [2.5, 2.5, 1, 2.5]
    cfg_plain = make_cfg(algo="one-step-q", **NO_EXPLORE)
    shared, worker = known_q_worker(cfg_plain, **ONLINE, **TARGET)
    worker.run_segment()
    np.testing.assert_allclose(targets_col(worker), [2.5, 2.5, 1.0, 2.5], rtol=1e-6)


def test_double_q_n_step_truncated():
    # Truncated long chain, next obs [1, 2, 1, 2] (all > 0.5: online argmax 1): V = s' = [1, 2, 1, 2]
    # t=3: truncated -> 1 + 0.5*2 = 2 ; t=2: 1 + 0.5*2 = 2 ; t=1: truncated -> 2 ; t=0: 2
    # (plain max: V = 3 -> t=3: 2.5, t=2: 2.25, t=1: 2.5, t=0: 2.25)
    cfg = make_cfg(env_id=LONG_ID, max_episode_steps=2, algo="n-step-q", double_q=True, **NO_EXPLORE)
    shared, worker = known_q_worker(cfg, **ONLINE, **TARGET)
    worker.run_segment()
    check_truncated_buffers(worker)
    set_q(shared.model, bias=[0.5, 0.0], slope=[0.0, 1.0])  # ONLINE again
    np.testing.assert_allclose(targets_col(worker), [2.0, 2.0, 2.0, 2.0], rtol=1e-6)


def test_final_obs_with_several_envs_next_segment():
    # K=2, t_max=2, chain of 3: segment 1 = steps 1-2, segment 2 = steps 3-4.
    # In segment 2: t=0 terminates (final obs 3), t=1 goes 0 -> 1.
    cfg = make_cfg(t_max=2, envs_per_worker=2, **NO_EXPLORE)
    shared = make_shared(cfg)
    worker = make_worker(cfg, shared)
    worker.run_segment()
    np.testing.assert_array_equal(worker.next_obs_buf[:, :, 0], [[1, 1], [2, 2]])
    assert not worker.done_buf.any()
    worker.run_segment()
    np.testing.assert_array_equal(worker.obs_buf[:, :, 0], [[2, 2], [0, 0]])
    np.testing.assert_array_equal(worker.next_obs_buf[:, :, 0], [[3, 3], [1, 1]])
    np.testing.assert_array_equal(worker.term_buf, [[True, True], [False, False]])
    np.testing.assert_array_equal(worker.done_buf, [[True, True], [False, False]])


# ============================================================ episode records
def test_episode_records_terminated():
    # K=2, t_max=4, 2 segments = 8 steps per env; episodes of length 3 end at local
    # steps 3 and 6: segment 1 t=2 (base 0: step 0 + 3*2 = 6) and segment 2 t=1 (base 8: 8 + 2*2 = 12).
    sink = ListSink()
    cfg = make_cfg(envs_per_worker=2, **NO_EXPLORE)
    shared = make_shared(cfg)
    worker = make_worker(cfg, shared, sink=sink)
    worker.run_segment()
    worker.run_segment()
    assert sink.records == [
        EpisodeRecord(0, 6, 3.0, 3, 0.0), EpisodeRecord(0, 6, 3.0, 3, 0.0),
        EpisodeRecord(0, 12, 3.0, 3, 0.0), EpisodeRecord(0, 12, 3.0, 3, 0.0),
    ]
    # the third episode (2 steps so far) is not reported, its return is still running
    np.testing.assert_array_equal(worker.book.ep_return, [2.0, 2.0])
    np.testing.assert_array_equal(worker.book.ep_len, [2, 2])


def test_episode_records_ramp_return():
    # ChainRamp: return 1 + 2 + 3 = 6, length 3
    sink = ListSink()
    cfg = make_cfg(env_id=RAMP_ID, t_max=3, **NO_EXPLORE)
    worker = make_worker(cfg, make_shared(cfg), sink=sink)
    worker.run_segment()
    assert [(r.episode_return, r.length) for r in sink.records] == [(6.0, 3)]


def test_episode_records_truncated():
    # max_episode_steps 2: episodes of return 2, length 2, ending at steps 2 and 4 (K=1)
    sink = ListSink()
    cfg = make_cfg(env_id=LONG_ID, max_episode_steps=2, **NO_EXPLORE)
    worker = make_worker(cfg, make_shared(cfg), sink=sink)
    worker.run_segment()
    assert sink.records == [EpisodeRecord(0, 2, 2.0, 2, 0.0), EpisodeRecord(0, 4, 2.0, 2, 0.0)]


def test_episode_decay_epsilon_in_records():
    # eps 1.0, x0.5 per episode, floor 0.2; the record carries the epsilon the episode was played with.
    # 4 episodes of length 3 in 12 steps: eps 1.0, 0.5, 0.25, 0.2 ; then 0.2.
    sink = ListSink()
    cfg = make_cfg(t_max=3, eps_schedule="episode-decay", eps_start=1.0, eps_decay=0.5, eps_min=0.2)
    worker = make_worker(cfg, make_shared(cfg), sink=sink)
    for _ in range(4):
        worker.run_segment()
    assert [r.epsilon for r in sink.records] == pytest.approx([1.0, 0.5, 0.25, 0.2])
    assert worker.book.eps == pytest.approx([0.2])


# ================================================================ exploration
def test_eps_draw_worker_one_final_epsilon_for_all_envs():
    cfg = make_cfg(env_id=LONG_ID, envs_per_worker=8, seed=3, eps_draw="worker")
    worker = make_worker(cfg, make_shared(cfg))
    assert worker.book.final_eps.shape == (8,)
    assert len(set(worker.book.final_eps.tolist())) == 1
    assert worker.book.final_eps[0] in (0.1, 0.01, 0.5)


def test_eps_draw_env_one_final_epsilon_per_env():
    cfg = make_cfg(env_id=LONG_ID, envs_per_worker=8, seed=3, eps_draw="env")
    worker = make_worker(cfg, make_shared(cfg))
    assert worker.book.final_eps.shape == (8,)
    assert set(worker.book.final_eps.tolist()) <= {0.1, 0.01, 0.5}
    assert len(set(worker.book.final_eps.tolist())) >= 2, worker.book.final_eps


def test_eps_draw_env_linear_schedule_reaches_each_final_epsilon():
    # anneal over 8 steps, segment = 2*4 = 8 steps: at the 2nd segment's start (global 8) eps = final.
    cfg = make_cfg(env_id=LONG_ID, envs_per_worker=4, t_max=2, seed=3, eps_draw="env", eps_anneal_steps=8)
    worker = make_worker(cfg, make_shared(cfg))
    np.testing.assert_allclose(worker.book.eps, [1.0] * 4)
    worker.run_segment()  # eps at global 0: still 1
    np.testing.assert_allclose(worker.book.eps, [1.0] * 4)
    worker.run_segment()  # eps at global 8: the per-env finals
    np.testing.assert_allclose(worker.book.eps, worker.book.final_eps)
    assert worker.epsilon() == pytest.approx(float(np.mean(worker.book.final_eps)))


def test_eps_draw_differs_between_workers():
    # Each worker has its own exploration stream: with per-worker draws, several
    # workers do not all get the same final epsilon (seed 0, 8 workers).
    cfg = make_cfg(env_id=LONG_ID, workers=8, seed=0, eps_draw="worker")
    shared = make_shared(cfg)
    finals = [make_worker(cfg, shared, i).book.final_eps[0] for i in range(8)]
    assert len(set(finals)) >= 2, finals


# ============================================================ reproducibility
def _run(cfg, segments: int = 3):
    sink = ListSink()
    shared = make_shared(cfg)
    worker = make_worker(cfg, shared, sink=sink)
    snap = []
    for _ in range(segments):
        worker.run_segment()
        snap.append([b.copy() for b in (worker.obs_buf, worker.next_obs_buf, worker.act_buf,
                                        worker.next_act_buf, worker.rew_buf, worker.term_buf,
                                        worker.done_buf)])
    return snap, params(shared.model), params(shared.target.model), sink.records, worker.last_loss


@pytest.mark.parametrize("algo", ["n-step-q", "one-step-sarsa"])
def test_reproducible_with_same_seed(algo):
    cfg = make_cfg(env_id="CartPole-v1", algo=algo, envs_per_worker=2, t_max=5, hidden_sizes=[16],
                   target_update_steps=15, seed=11)
    a, b = _run(cfg), _run(cfg)
    for seg_a, seg_b in zip(a[0], b[0], strict=False):
        for x, y in zip(seg_a, seg_b, strict=False):
            np.testing.assert_array_equal(x, y)
    assert_params_equal(a[1], b[1])
    assert_params_equal(a[2], b[2])
    assert a[3] == b[3]
    assert a[4] == b[4]
    # and a different seed gives a different run (the test is not vacuous)
    c = _run(cfg.replace(seed=12))
    assert params_differ(a[1], c[1])


@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_update_gradient_is_the_mean_or_the_sum_over_the_segments_rows(reduce):
    # Q(s, a) = 1 everywhere (online bias 1, slope 0), target Q = 0. The last layer's bias gradient of
    # the Huber TD loss is, per action a, sum over the segment's rows with action a of clip(1 - y, -1, 1):
    # divided by the t_max x envs rows for --grad-reduce mean, as is for sum (the paper's accumulation).
    cfg = make_cfg(algo="n-step-q", envs_per_worker=2, grad_clip=None, grad_reduce=reduce, **NO_EXPLORE)
    shared, worker = known_q_worker(cfg, online_bias=(1.0, 1.0), target_bias=(0.0, 0.0))
    seen: list[np.ndarray] = []

    class Capture:
        def step(self, lr):
            seen.append(shared.model.q[2].bias.grad.detach().numpy().copy())

    worker.optimizer = Capture()
    worker.run_segment()
    y, actions = worker.targets(), worker.act_buf  # (T, K), recomputed from the unchanged target net
    rows = worker.T * worker.K
    per_action = np.array([np.clip(1.0 - y[actions == a], -1.0, 1.0).sum() for a in (0, 1)])
    expected = per_action if reduce == "sum" else per_action / rows
    assert rows == 8 and len(seen) == 1
    np.testing.assert_allclose(seen[0], expected, rtol=1e-5, atol=1e-7)
    assert np.abs(expected).sum() > 0.1  # a gradient worth checking


def test_compiled_and_numpy_engines_learn_the_same():
    # --jit (the default: algo/mlp_kernels.py's kernels) and --no-jit (the numpy reference): the same worker
    # on the same seeds takes the same actions and ends with the same weights, up to float32 rounding
    common = {"env_id": "CartPole-v1", "envs_per_worker": 4, "t_max": 5, "hidden_sizes": [32, 32], "gamma": 0.99,
              "target_update_steps": 200}
    jit_engine, jit_actions, jit_params, jit_loss = run_segments(make_cfg(**common, jit=True), 40)
    np_engine, np_actions, np_params, np_loss = run_segments(make_cfg(**common, jit=False), 40)
    assert (jit_engine, np_engine) == ("JitMLPEngine", "NumpyMLPEngine")
    np.testing.assert_array_equal(jit_actions, np_actions)
    assert jit_loss == pytest.approx(np_loss, rel=1e-4)
    for a, b in zip(jit_params, np_params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert params_differ(jit_params, params(build_shared(make_cfg(env_id="CartPole-v1", hidden_sizes=[32, 32]),
                                                         inspect_env("CartPole-v1")).model))


@pytest.mark.parametrize("options", [
    {"double_q": True, "grad_clip": 1.0, "grad_reduce": "sum"},
    {"double_q": False, "loss": "mse", "eps_schedule": "episode-decay", "eps_decay": 0.9},
])
def test_fused_segment_is_the_step_by_step_segment(options):
    # ActorLearner's fused n-step Q path (one compiled call per env step and one per update) against the
    # step-by-step calls: bit-identical actions, buffers, episodes and weights, across episode ends
    # (a 30-step time limit: truncations, and terminations) and target syncs.
    runs = []
    for fused in (True, False):
        cfg = make_cfg(env_id="CartPole-v1", envs_per_worker=4, t_max=5, hidden_sizes=[32, 32], gamma=0.99,
                       target_update_steps=200, max_episode_steps=30, lr=1e-2, **options)
        shared = make_shared(cfg)
        sink = ListSink()
        worker = make_worker(cfg, shared, sink=sink)
        assert worker.fused  # the default for this case
        worker.fused = fused
        actions, dones = [], []
        for _ in range(60):
            worker.run_segment()
            actions.append(worker.act_buf.copy())
            dones.append(worker.done_buf.copy())
        episodes = [(r.step, r.episode_return, r.length, r.epsilon) for r in sink.records]
        runs.append((np.array(actions), np.array(dones), params(shared.model), worker.last_loss, episodes,
                     worker.book.eps.copy(), shared.target.syncs))
    fused_run, stepwise_run = runs
    np.testing.assert_array_equal(fused_run[0], stepwise_run[0])
    np.testing.assert_array_equal(fused_run[1], stepwise_run[1])
    assert_params_equal(fused_run[2], stepwise_run[2])
    assert fused_run[3] == stepwise_run[3]
    assert fused_run[4] == stepwise_run[4] and len(fused_run[4]) > 20  # many episodes ended
    np.testing.assert_array_equal(fused_run[5], stepwise_run[5])
    assert fused_run[6] == stepwise_run[6] > 1
    assert fused_run[1].sum() > 20
