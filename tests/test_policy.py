"""`asyncdqn.load_policy`: a trained run's policy, loaded and used like a user would.

One tiny CartPole run (serial backend, in-process, a few thousand steps) serves
every test; the notebook-style test runs a whole script in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file

import asyncdqn
from asyncdqn.errors import CheckpointError, RunDirError
from asyncdqn.evaluate import evaluate

TINY = {"env_id": "CartPole-v1", "backend": "serial", "workers": 1, "envs_per_worker": 2, "hidden_sizes": [16],
        "max_steps": 3000, "eval_every_steps": 1500, "eval_episodes": 3, "screen_episodes": 3,
        "solve_score": None, "progress": False, "checkpoint_every": 1000, "average_steps": 500}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "run"
    asyncdqn.train({**TINY, "run_dir": str(path)})
    return path


def _mlp(weights: dict[str, np.ndarray], prefix: str, x: np.ndarray) -> np.ndarray:
    """The Q-network's forward written out: Linear, ReLU, Linear."""
    h = np.maximum(x @ weights[f"{prefix}q.0.weight"].T + weights[f"{prefix}q.0.bias"], 0.0)
    return h @ weights[f"{prefix}q.2.weight"].T + weights[f"{prefix}q.2.bias"]


def test_exports() -> None:
    assert asyncdqn.load_policy.__module__ == "asyncdqn.policy"
    assert asyncdqn.Policy.__name__ == "Policy"
    assert asyncdqn.resume.__module__ == "asyncdqn.trainer"
    assert {"load_policy", "Policy", "resume"} <= set(asyncdqn.__all__)


def test_q_values_and_act_match_the_saved_weights(run: Path) -> None:
    policy = asyncdqn.load_policy(run)  # best
    assert policy.env_id == "CartPole-v1" and policy.config.hidden_sizes == (16,)
    assert (policy.obs_dim, policy.n_actions) == (4, 2)
    w = load_file(str(run / "checkpoints" / "best.safetensors"))
    obs = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    want = _mlp(w, "model.", obs)
    np.testing.assert_allclose(policy.q_values(obs), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(policy.q_values(obs[3]), want[3], rtol=1e-5, atol=1e-5)
    batch = policy.act(obs)
    assert batch.shape == (7,) and batch.dtype == np.int64
    np.testing.assert_array_equal(batch, want.argmax(axis=1))
    single = policy.act(obs[2])
    assert isinstance(single, int) and single == int(want[2].argmax())
    assert policy.act(list(map(float, obs[2]))) == single  # plain lists are observations too


def test_final_and_latest_hand_out_the_weight_average(run: Path) -> None:
    obs = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    final = load_file(str(run / "checkpoints" / "final.safetensors"))
    assert any(k.startswith("average.") for k in final)
    got = asyncdqn.load_policy(run, "final").q_values(obs)
    np.testing.assert_allclose(got, _mlp(final, "average.", obs), rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, _mlp(final, "model.", obs))  # the average, not the raw online weights
    manifest = json.loads((run / "checkpoints" / "manifest.json").read_text())
    newest = manifest["checkpoints"][-1]["file"]
    latest = asyncdqn.load_policy(run, "latest")
    assert latest.source.name == newest and latest.step == manifest["checkpoints"][-1]["step"]
    by_name = asyncdqn.load_policy(run, newest)
    np.testing.assert_array_equal(latest.q_values(obs), by_name.q_values(obs))


def test_epsilon_explores_uniformly(run: Path) -> None:
    policy = asyncdqn.load_policy(run)
    obs = np.zeros((4000, 4), dtype=np.float32)
    greedy = policy.act(obs[0])
    rng = np.random.default_rng(3)
    acts = policy.act(obs, epsilon=0.5, rng=rng)
    # greedy with prob 0.5 + 0.5/2 = 0.75, the other action 0.25 (4000 draws: +-0.03 is > 4 sigma)
    assert abs(float(np.mean(acts == greedy)) - 0.75) < 0.03
    assert np.array_equal(policy.act(obs[:50], epsilon=0.0), np.full(50, greedy))
    with pytest.raises(ValueError, match="epsilon"):
        policy.act(obs[0], epsilon=1.5)


def test_evaluate_is_the_trainers_protocol(run: Path) -> None:
    policy = asyncdqn.load_policy(run)
    r = policy.evaluate(episodes=4, seed=7)
    again = policy.evaluate(episodes=4, seed=7)
    assert r.returns == again.returns and r.episodes == 4
    direct = evaluate(policy.q_values, "CartPole-v1", 4, 7, 0)
    assert direct.returns == r.returns
    assert all(1 <= x <= 500 for x in r.returns)


def test_evaluation_epsilon(run: Path, tmp_path: Path) -> None:
    """--eval-epsilon: reproducible for (seed, round), 0 is greedy, 1 plays uniformly at random (a
    network that always answers action 0 keeps a CartPole pole up ~9 steps; random play ~22); the
    policy of a run with eval_epsilon evaluates with it unless told otherwise."""
    def always_left(obs: np.ndarray) -> np.ndarray:
        return np.tile([1.0, 0.0], (len(obs), 1))

    greedy = evaluate(always_left, "CartPole-v1", 20, 3, 0)
    assert evaluate(always_left, "CartPole-v1", 20, 3, 0, epsilon=0.0).returns == greedy.returns
    noisy = evaluate(always_left, "CartPole-v1", 20, 3, 0, epsilon=1.0)
    assert noisy.returns == evaluate(always_left, "CartPole-v1", 20, 3, 0, epsilon=1.0).returns
    assert noisy.returns != evaluate(always_left, "CartPole-v1", 20, 3, 1, epsilon=1.0).returns  # another round
    assert max(greedy.returns) < 12 < float(np.mean(noisy.returns))
    with pytest.raises(ValueError, match="epsilon"):
        evaluate(always_left, "CartPole-v1", 1, 3, 0, epsilon=-0.1)

    copy = _copy(run, tmp_path)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["eval_epsilon"] = 0.5
    (copy / "config.json").write_text(json.dumps(cfg))
    policy = asyncdqn.load_policy(copy)
    assert policy.evaluate(4, 7).returns == evaluate(policy, "CartPole-v1", 4, 7, 0, epsilon=0.5).returns
    assert policy.evaluate(4, 7, epsilon=0.0).returns == asyncdqn.load_policy(run).evaluate(4, 7).returns


def test_evaluate_reports_the_q_spread_and_a_network_blind_to_its_input() -> None:
    """q_range: the largest max - min of one action's Q over every observation played. A network
    whose features died answers with its biases alone: the range is exactly 0."""
    seen: list[np.ndarray] = []

    def q_pos(obs: np.ndarray) -> np.ndarray:  # Q = (x, 3 * theta): the cart position and the pole angle
        seen.append(obs.copy())
        return np.stack([obs[:, 0], 3 * obs[:, 2]], axis=1)

    r = evaluate(q_pos, "CartPole-v1", 3, 7, 0)
    played = np.concatenate(seen)
    spreads = [np.ptp(played[:, 0]), np.ptp(3 * played[:, 2])]
    assert r.q_range == pytest.approx(float(max(spreads))) and r.q_range > 0 and not r.input_blind
    dead = evaluate(lambda obs: np.tile(np.array([0.1, -0.2], np.float32), (len(obs), 1)), "CartPole-v1", 3, 7, 0)
    assert dead.q_range == 0.0 and dead.input_blind and dead.to_dict()["q_range"] == 0.0


def test_a_run_whose_network_went_blind_warns_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from asyncdqn import evaluator

    def blind(q: Any, *args: Any, **kwargs: Any) -> Any:  # every evaluation sees a dead network
        return evaluate(lambda obs: np.zeros((len(obs), 2), np.float32), *args, **kwargs)

    monkeypatch.setattr(evaluator, "evaluate", blind)  # the serial backend evaluates in-process
    asyncdqn.train(env_id="CartPole-v1", backend="serial", workers=1, envs_per_worker=2, hidden_sizes=[8],
                   max_steps=3000, eval_every_steps=1000, eval_episodes=2, solve_score=None, progress=False,
                   run_dir=str(tmp_path / "run"))
    err = capsys.readouterr().err
    assert err.count("the Q-network gave the same values for every observation") == 1, err
    assert "lower --lr" in err


def test_bad_observation_shape(run: Path) -> None:
    policy = asyncdqn.load_policy(run)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        policy.act(np.zeros(3))
    with pytest.raises(ValueError, match="batch"):
        policy.q_values(np.zeros((2, 2, 4)))


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


@pytest.mark.parametrize("case", ["no-dir", "not-a-run", "no-checkpoint", "bad-which", "corrupt", "shapes",
                                  "foreign-env"])
def test_errors_are_one_line(run: Path, tmp_path: Path, case: str) -> None:
    which = "best"
    if case == "no-dir":
        target, kind, fragment = tmp_path / "nope", RunDirError, "not found"
    elif case == "not-a-run":
        target, kind, fragment = tmp_path, RunDirError, "not a run directory"
    else:
        target = _copy(run, tmp_path)
        ck = target / "checkpoints"
        if case == "no-checkpoint":
            (ck / "best.safetensors").unlink()
            kind, fragment = CheckpointError, "no 'best' checkpoint"
        elif case == "bad-which":
            which, kind, fragment = "../config.json", CheckpointError, "which"
        elif case == "corrupt":
            (ck / "best.safetensors").write_bytes(b"\x00" * 64)
            kind, fragment = CheckpointError, "corrupt checkpoint"
        elif case == "shapes":
            cfg = json.loads((target / "config.json").read_text())
            cfg["hidden_sizes"] = [32]
            (target / "config.json").write_text(json.dumps(cfg))
            kind, fragment = CheckpointError, "does not match the model"
        else:
            cfg = json.loads((target / "config.json").read_text())
            cfg["env_spec"]["obs_dim"] = 8
            (target / "config.json").write_text(json.dumps(cfg))
            kind, fragment = CheckpointError, "obs_dim"
    with pytest.raises(kind, match=fragment) as info:
        asyncdqn.load_policy(target, which)
    assert "\n" not in str(info.value)


def test_cli_evaluate_uses_the_policy(run: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "asyncdqn.cli", "evaluate", str(run), "--episodes", "3", "--seed", "5", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert tuple(json.loads(out.stdout)["returns"]) == asyncdqn.load_policy(run).evaluate(3, 5).returns
    bad = subprocess.run([*cmd[:5], "--checkpoint", "nope.safetensors"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no 'nope.safetensors' checkpoint" in bad.stderr


SCRIPT = """
import gymnasium as gym
import numpy as np
import asyncdqn

result = asyncdqn.train(env_id="CartPole-v1", backend="serial", workers=1, envs_per_worker=2, hidden_sizes=[16],
                        max_steps=2000, eval_every_steps=None, eval_episodes=3, solve_score=None,
                        progress=False, run_dir={run_dir!r})
policy = asyncdqn.load_policy(result.run_dir)
env = gym.make(policy.env_id)
obs, _ = env.reset(seed=0)
total, done = 0.0, False
while not done:
    obs, r, term, trunc, _ = env.step(policy.act(obs))
    total += r
    done = term or trunc
batch = np.stack([env.observation_space.sample() for _ in range(5)])
print({{"total": total, "actions": policy.act(batch).tolist(), "q": policy.q_values(batch).shape,
        "mean": policy.evaluate(episodes=3, seed=1).mean}})
"""


def test_notebook_style_script(tmp_path: Path) -> None:
    script = tmp_path / "nb.py"
    script.write_text(textwrap.dedent(SCRIPT.format(run_dir=str(tmp_path / "nb-run"))))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=180)
    assert out.returncode == 0, out.stderr
    got: dict[str, Any] = eval(out.stdout.strip().splitlines()[-1])  # a dict literal printed by the script
    assert 1 <= got["total"] <= 500
    assert len(got["actions"]) == 5 and set(got["actions"]) <= {0, 1}
    assert got["q"] == (5, 2)
    assert 1 <= got["mean"] <= 500


def test_layer_norm_run_learns_checkpoints_and_loads(tmp_path: Path) -> None:
    """--layer-norm through the trainer (the compiled LayerNorm kernels, serial backend:
    deterministic): CartPole learns within 12k steps, and the checkpointed LayerNorm network loads
    into a policy whose Q-values are the torch module's."""
    import torch

    path = tmp_path / "ln"
    result = asyncdqn.train({**TINY, "run_dir": str(path), "layer_norm": True, "hidden_sizes": [64],
                             "envs_per_worker": 4, "max_steps": 12_000, "eval_every_steps": 4000,
                             "lr": 2e-3, "target_update_steps": 1000, "eps_anneal_steps": 4000, "seed": 1})
    assert result.best_eval is not None and result.best_eval["mean"] >= 100.0, result.best_eval  # random: ~22
    policy = asyncdqn.load_policy(path)
    assert policy.network.layer_norm and "q.1.weight" in policy.network.state_dict()  # the LayerNorm's gain
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    with torch.no_grad():
        want = policy.network(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(policy.q_values(obs), want, rtol=1e-5, atol=1e-5)
