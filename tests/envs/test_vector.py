"""Vector steppers (asyncdqn.envs.vector): the SAME_STEP transition contract, exactly, for both
implementations, and EnvPool's environments against Gymnasium's in distribution.

- GymnasiumStepper must give exactly SyncVectorEnv(SAME_STEP)'s transitions for the same
  seeds and actions (it replaced it in the worker and in the ceiling).
- EnvPoolStepper: with one env, its transitions must be EnvPool's own with the
  auto-reset pseudo-step removed: the step that ends an episode reports the true final
  observation AND already the next episode's first observation (the one EnvPool would
  have returned on the next step).
- Equivalence: the same fixed heuristic policy on both, return distributions compared
  by a two-sample KS test (fails on a wrong reward/termination contract: checked below
  by feeding it a deliberately broken stepper).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from asyncdqn.envs import env_seeds, make_env
from asyncdqn.envs.equivalence import HEURISTICS, episode_returns, ks_2samp, lunar_lander_heuristic, welch_z
from asyncdqn.envs.vector import ENVPOOL_IDS, EnvPoolStepper, GymnasiumStepper, _strip, check_envpool_env, make_stepper
from asyncdqn.errors import EnvError
from chain_env import CHAIN_ID, LONG_ID

pytestmark = pytest.mark.filterwarnings("ignore:.*precision lowered")  # EnvPool's float64 Box bounds


# ------------------------------------------------------------ gymnasium stepper
def _sync_reference(env_id: str, seeds: list[int], actions: np.ndarray, max_episode_steps: int | None = None):
    envs = SyncVectorEnv([lambda: make_env(env_id, max_episode_steps) for _ in seeds],
                         autoreset_mode=AutoresetMode.SAME_STEP)
    obs0, _ = envs.reset(seed=seeds)
    out = []
    for a in actions:
        obs, rew, term, trunc, info = envs.step(a)
        done = term | trunc
        final = np.stack(info["final_obs"][done]) if done.any() else None
        out.append((obs.copy(), rew.copy(), term.copy(), trunc.copy(), final))
    envs.close()
    return obs0, out


@pytest.mark.parametrize("env_id,limit,lean", [("CartPole-v1", None, True), ("LunarLander-v3", 25, True),
                                               ("LunarLander-v3", 25, False), ("Acrobot-v1", 30, True)])
def test_gymnasium_stepper_equals_sync_vector_env_same_step(env_id: str, limit: int | None, lean: bool) -> None:
    seeds, k, steps = [11, 12, 13, 14], 4, 120
    n_actions = int(gym.make(env_id).action_space.n)
    actions = np.random.default_rng(0).integers(0, n_actions, size=(steps, k))
    obs0, ref = _sync_reference(env_id, seeds, actions, limit)
    st = GymnasiumStepper(env_id, seeds, limit, lean=lean)
    np.testing.assert_array_equal(st.reset(), obs0)
    ended = truncated = 0
    for a, (obs, rew, term, trunc, final) in zip(actions, ref, strict=True):
        o2, r2, te2, tr2, f2 = st.step(a)
        np.testing.assert_array_equal(o2, obs)
        np.testing.assert_array_equal(r2, rew.astype(np.float32))
        np.testing.assert_array_equal(te2, term)
        np.testing.assert_array_equal(tr2, trunc)
        assert (f2 is None) == (final is None)
        if final is not None:
            np.testing.assert_array_equal(f2, final)
            ended += int((term | trunc).sum())
            truncated += int(trunc.sum())
    st.close()
    assert ended > 0  # the comparison covered episode ends
    if limit is not None:
        assert truncated > 0  # ... and time-limit truncations


def test_gymnasium_stepper_contract_on_the_chain() -> None:
    # Chain: position +1 per step, terminates at 3. Final obs 3, next obs 0, same step.
    st = GymnasiumStepper(CHAIN_ID, [0, 1])
    np.testing.assert_array_equal(st.reset(), [[0.0], [0.0]])
    for pos in (1, 2):
        obs, rew, term, trunc, final = st.step(np.array([0, 1]))
        np.testing.assert_array_equal(obs, [[pos], [pos]])
        assert final is None and not term.any() and not trunc.any()
    obs, rew, term, trunc, final = st.step(np.array([0, 0]))
    np.testing.assert_array_equal(term, [True, True])
    np.testing.assert_array_equal(trunc, [False, False])
    np.testing.assert_array_equal(final, [[3.0], [3.0]])
    np.testing.assert_array_equal(obs, [[0.0], [0.0]])
    np.testing.assert_array_equal(rew, [1.0, 1.0])


def test_gymnasium_stepper_truncates_like_time_limit() -> None:
    st = GymnasiumStepper(LONG_ID, [0], max_episode_steps=2)
    assert st.limits == [2]  # the standard wrappers were bypassed and the limit taken over
    st.reset()
    assert st.step(np.array([0]))[4] is None
    obs, _, term, trunc, final = st.step(np.array([0]))
    assert (bool(term[0]), bool(trunc[0])) == (False, True)
    np.testing.assert_array_equal(final, [[2.0]])
    np.testing.assert_array_equal(obs, [[0.0]])


def test_strip_keeps_envs_with_other_wrappers() -> None:
    env = gym.wrappers.TransformReward(make_env(CHAIN_ID), lambda r: 10 * r)
    inner, limit = _strip(env)
    assert inner is env and limit is None  # an unknown wrapper: nothing bypassed


def test_int_discrete_contains_agrees_with_gymnasium() -> None:
    inner, _ = _strip(make_env("CartPole-v1"))
    ref = gym.spaces.Discrete(2)
    for x in (-1, 0, 1, 2, np.int64(1), np.int64(5), 1.0, "a"):
        assert inner.action_space.contains(x) == ref.contains(x), x


def test_envpool_missing_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "envpool", None)  # import envpool -> ImportError
    with pytest.raises(EnvError, match=r"needs the envpool package \(pip install 'asyncdqn\[envpool\]'\)"):
        make_stepper("envpool", "CartPole-v1", [0])


# -------------------------------------------------------------- envpool stepper
envpool = pytest.importorskip("envpool")  # installed by `make test` (the envpool extra)


def _raw_pool(env_id: str, seed: int, **kw: Any):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return envpool.make(env_id, env_type="gymnasium", num_envs=1, batch_size=1, num_threads=1, seed=[seed], **kw)


@pytest.mark.parametrize("env_id,kw", [("CartPole-v1", {}), ("CartPole-v1", {"max_episode_steps": 7}),
                                       ("MountainCar-v0", {"max_episode_steps": 20})])
def test_envpool_stepper_is_envpool_without_the_autoreset_step(env_id: str, kw: dict[str, Any]) -> None:
    """EnvPool (NEXT_STEP) ends an episode at step t and spends step t+1 on the reset (action
    ignored, reward 0, not done). The adapter must report at step t: the true final
    observation, terminated/truncated as EnvPool did, and already the reset observation."""
    seed, steps = 5, 300
    raw = _raw_pool(env_id, seed, **kw)
    st = EnvPoolStepper(env_id, [seed], kw.get("max_episode_steps"))
    assert st._raw is not None  # the lean path over EnvPool's C++ calls is what is checked here
    raw_obs, _ = raw.reset()
    np.testing.assert_array_equal(st.reset(), raw_obs)
    rng = np.random.default_rng(1)
    ends = truncs = 0
    for _ in range(steps):
        a = rng.integers(0, st.n_actions, size=1)
        obs, rew, term, trunc, final = st.step(a)
        r_obs, r_rew, r_term, r_trunc, _ = raw.step(a.astype(np.int32))
        np.testing.assert_array_equal(rew, r_rew)
        np.testing.assert_array_equal(term, r_term)
        np.testing.assert_array_equal(trunc, r_trunc)
        if r_term[0] or r_trunc[0]:
            ends += 1
            truncs += int(r_trunc[0])
            np.testing.assert_array_equal(final, r_obs)  # the true final observation
            # EnvPool's next step is the reset step: its observation is what we returned.
            n_obs, n_rew, n_term, n_trunc, n_info = raw.step(np.zeros(1, dtype=np.int32))
            assert n_rew[0] == 0 and not n_term[0] and not n_trunc[0] and n_info["elapsed_step"][0] == 0
            np.testing.assert_array_equal(obs, n_obs)
        else:
            assert final is None
            np.testing.assert_array_equal(obs, r_obs)
    assert ends >= 3
    if kw:
        assert truncs >= 3  # time-limit ends are reported as truncated, not terminated


@pytest.mark.parametrize("env_id", ["LunarLander-v3", "Acrobot-v1"])
def test_envpool_lean_step_equals_envpools_public_step(env_id: str) -> None:
    # the raw _send/_recv path and EnvPool's own step() (the fallback for any other layout) agree
    seeds = list(range(10, 18))
    lean, public = EnvPoolStepper(env_id, seeds, 60), EnvPoolStepper(env_id, seeds, 60)
    public._raw = None
    np.testing.assert_array_equal(lean.reset(), public.reset())
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(200):
        a = rng.integers(0, lean.n_actions, size=len(seeds))
        got, want = lean.step(a), public.step(a)
        for x, y in zip(got[:4], want[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        assert (got[4] is None) == (want[4] is None)
        if got[4] is not None:
            ends += len(got[4])
            np.testing.assert_array_equal(got[4], want[4])
    assert ends >= 8  # episode ends (the 60-step limit at least) were compared too


def test_envpool_stepper_several_envs_only_ended_ones_reset() -> None:
    st = EnvPoolStepper("CartPole-v1", [1, 2, 3])
    st.reset()
    seen = 0
    for _ in range(100):
        obs, rew, term, trunc, final = st.step(np.ones(3, dtype=np.int64))  # push right: falls in ~10 steps
        done = term | trunc
        if final is not None:
            seen += 1
            assert final.shape == (int(done.sum()), 4)
            # a fresh CartPole starts with every coordinate in [-0.05, 0.05]; a final state does not
            assert (np.abs(obs[done]) <= 0.05).all()
            assert (np.abs(final) > 0.05).any(axis=1).all()
    assert seen >= 5
    assert (np.asarray(rew) == 1.0).all()  # never the reward-0 auto-reset step


def test_envpool_seeds_give_reproducible_and_distinct_envs() -> None:
    a, b = EnvPoolStepper("CartPole-v1", [7, 8]), EnvPoolStepper("CartPole-v1", [7, 8])
    oa, ob = a.reset(), b.reset()
    np.testing.assert_array_equal(oa, ob)
    assert not np.array_equal(oa[0], oa[1])
    big = EnvPoolStepper("CartPole-v1", [2**32 - 1, 2**31])  # worker seeds are uint32: folded into int32
    assert big.reset().shape == (2, 4)


def test_envpool_refuses_envs_it_lacks() -> None:
    with pytest.raises(EnvError, match="EnvPool has no supported counterpart"):
        check_envpool_env(CHAIN_ID)
    with pytest.raises(EnvError, match="no supported counterpart"):
        make_stepper("envpool", "AsyncDQNTest/Chain-v0", [0])
    for env_id in ENVPOOL_IDS:
        check_envpool_env(env_id)


# ------------------------------------------------------------------ equivalence
def test_heuristic_port_matches_gymnasium() -> None:
    from gymnasium.envs.box2d.lunar_lander import heuristic

    env = gym.make("LunarLander-v3")
    s = np.random.default_rng(0).normal(size=(400, 8)).astype(np.float32)
    s[:, 6:] = np.random.default_rng(1).integers(0, 2, size=(400, 2))
    np.testing.assert_array_equal(lunar_lander_heuristic(s), [heuristic(env, x) for x in s])


def test_ks_2samp_known_values() -> None:
    x = np.arange(10.0)
    assert ks_2samp(x, x) == (0.0, 1.0)
    d, p = ks_2samp(x, x + 100)
    assert d == 1.0 and p < 1e-3
    rng = np.random.default_rng(0)
    d, p = ks_2samp(rng.normal(size=400), rng.normal(size=400))
    assert p > 0.01
    d, p = ks_2samp(rng.normal(size=400), rng.normal(0.5, 1, size=400))
    assert p < 1e-6


class _DropsEveryOtherEnd:
    """A broken stepper: hides every second episode end of each env (as a stepper that lost
    `terminated` would), so two episodes count as one."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.num_envs, self.n_actions = inner, inner.num_envs, inner.n_actions
        self.hide = np.ones(inner.num_envs, dtype=bool)

    def reset(self) -> np.ndarray:
        return self.inner.reset()

    def step(self, a: np.ndarray):
        obs, rew, term, trunc, final = self.inner.step(a)
        ended = term | trunc
        hidden = ended & self.hide
        self.hide[ended] = ~self.hide[ended]
        return obs, rew, term & ~hidden, trunc & ~hidden, final


@pytest.mark.parametrize("env_id,episodes", [("CartPole-v1", 200), ("Acrobot-v1", 120), ("MountainCar-v0", 120)])
def test_envpool_matches_gymnasium_in_distribution(env_id: str, episodes: int) -> None:
    policy = HEURISTICS[env_id]
    seeds = env_seeds(3, 1, 8)
    g = episode_returns(GymnasiumStepper(env_id, seeds), policy, episodes)[0]
    e = episode_returns(EnvPoolStepper(env_id, seeds), policy, episodes)[0]
    d, p = ks_2samp(g, e)
    assert p > 0.001, (env_id, g.mean(), e.mean(), d, p)
    assert abs(welch_z(g, e)) < 4.0
    # The test has power: a stepper that loses episode ends is caught at once.
    broken = episode_returns(_DropsEveryOtherEnd(EnvPoolStepper(env_id, seeds)), policy, 40)[0]
    assert ks_2samp(g, broken)[1] < 1e-6


@pytest.mark.slow
def test_envpool_lunar_lander_matches_gymnasium_in_distribution() -> None:
    seeds = env_seeds(4, 1, 8)
    g = episode_returns(GymnasiumStepper("LunarLander-v3", seeds), lunar_lander_heuristic, 120)[0]
    e = episode_returns(EnvPoolStepper("LunarLander-v3", seeds), lunar_lander_heuristic, 120)[0]
    d, p = ks_2samp(g, e)
    assert p > 0.001, (g.mean(), e.mean(), d, p)
    assert abs(g.mean() - e.mean()) < 60.0  # heuristic scores ~240 ± 100 on both


# ------------------------------------------------------------ through the trainer
@pytest.mark.slow
def test_learns_cartpole_with_envpool_workers(tmp_path: Path) -> None:
    """Two process workers stepping EnvPool's CartPole learn it; the solve is judged on
    Gymnasium's CartPole (evaluation never uses EnvPool)."""
    import json

    from asyncdqn.trainer import train

    r = train({
        "env_id": "CartPole-v1", "backend": "process", "workers": 2, "seed": 3, "vector": "envpool",
        "max_steps": 400_000, "max_seconds": 240, "solve_score": 195.0, "eval_episodes": 20,
        "screen_episodes": 5, "eval_every_steps": 20_000, "progress": False, "run_dir": str(tmp_path / "run"),
    })
    assert r.solved, r.to_dict()
    assert r.solve_eval is not None and r.solve_eval["mean"] >= 195.0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["vector"] == "envpool"


def test_train_refuses_envpool_for_an_env_it_lacks(tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "asyncdqn.cli", "train", "--env", "CartPole-v0", "--vector",
                           "envpool", "--max-steps", "100", "--runs-root", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("asyncdqn: error: --vector envpool: EnvPool has no")
    assert not any(tmp_path.iterdir())  # refused before any run directory was made


def test_envpool_refuses_env_kwargs() -> None:
    with pytest.raises(EnvError, match="does not take --env-kwargs"):
        EnvPoolStepper("CartPole-v1", [0], env_kwargs={"sutton_barto_reward": True})
