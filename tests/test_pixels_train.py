"""Learning on images end to end: the conv learner's buffers and targets on a scripted image env,
real learning on a tiny image task, and train -> evaluate -> render / resume / compare through
the CLI on MinAtar and ALE (skipped with the reason when an extra is missing), plus bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import asyncdqn
from asyncdqn.algo.targets import greedy_values, n_step_targets
from asyncdqn.backends.base import ListSink
from asyncdqn.backends.shared import build_shared
from asyncdqn.cli import main
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.learners.async_q import ActorLearner
from asyncdqn.learners.engines import NumpyConvEngine, TorchEngine
from asyncdqn.trainer import train

HAVE_ALE = importlib.util.find_spec("ale_py") is not None
HAVE_MINATAR = importlib.util.find_spec("minatar") is not None
CLI = [sys.executable, "-m", "asyncdqn.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

IMAGE_CHAIN = "PixelsTest/ImageChain-v0"
IMAGE_BANDIT = "PixelsTest/ImageBandit-v0"
DICT_OBS = "PixelsTest/DictObs-v0"


class ImageChain(gym.Env):  # type: ignore[type-arg]
    """Position 0, 1, 2, 3 (terminal), one step each; the image is (1, 10, 10) filled with 10*position."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (1, 10, 10), np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self.pos = 0

    def _obs(self) -> np.ndarray:
        return np.full((1, 10, 10), 10 * self.pos, np.uint8)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.pos = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.pos += 1
        return self._obs(), float(self.pos), self.pos >= 3, False, {}


class ImageBandit(gym.Env):  # type: ignore[type-arg]
    """One-step episodes: a lit pixel anywhere in the left or the right half of a (1, size, size) image
    (size even, 10 by default); reward 1 for the action naming that half (0 left, 1 right), else 0.
    Greedy optimum: 1."""

    def __init__(self, size: int = 10) -> None:
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (1, size, size), np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self.side = 0

    def _obs(self) -> np.ndarray:
        n, half = self.size, self.size // 2
        o = np.zeros((1, n, n), np.uint8)
        self.side = int(self.np_random.integers(2))
        o[0, self.np_random.integers(n), half * self.side + self.np_random.integers(half)] = 255
        return o

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        reward = float(int(action) == self.side)  # before the next image redraws the side
        return self._obs(), reward, True, False, {}


class DictObs(ImageChain):
    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Dict({"image": self.observation_space})  # type: ignore[assignment]


for _id, _cls in ((IMAGE_CHAIN, ImageChain), (IMAGE_BANDIT, ImageBandit), (DICT_OBS, DictObs)):
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=_cls)


# ------------------------------------------------------- the conv learner
def _learner(env_id: str, **over: Any) -> ActorLearner:
    cfg = resolve_config({"env_id": env_id, "workers": 1, "max_steps": 10**6, "progress": False, **over})
    shared = build_shared(cfg, inspect_env(env_id))
    shared.target.sync_from(shared.model, 0)
    s = shared
    return ActorLearner(cfg, 0, s.model, s.optimizer, s.target, s.counter, ListSink())


def test_image_segment_buffers_are_uint8_and_ended_episodes_bootstrap_from_their_final_image() -> None:
    w = _learner(IMAGE_CHAIN, envs_per_worker=2, t_max=4, algo="n-step-q", gamma=0.9)
    assert isinstance(w.engine, NumpyConvEngine)
    assert w.obs_seq.dtype == np.uint8 and w.obs_seq.shape == (5, 2, 1, 10, 10)
    w.run_segment()
    np.testing.assert_array_equal(w.obs_buf[:, 0, 0, 0, 0], [0, 10, 20, 0])
    np.testing.assert_array_equal(w.next_obs_buf[:, 0, 0, 0, 0], [10, 20, 30, 10])  # 30: final, not the reset
    # The targets the learner built are n-step returns bootstrapped from its target net on those states.
    q_next = w.engine.target(w.next_obs_buf.reshape(8, 1, 10, 10)).reshape(4, 2, -1)
    want = n_step_targets(w.rew_buf, w.term_buf, w.done_buf, greedy_values(q_next).astype(np.float32), 0.9)
    np.testing.assert_allclose(w.targets(), want, rtol=1e-5)
    w.run_segment()  # the next segment starts from the last observation of this one
    np.testing.assert_array_equal(w.obs_buf[:, 0, 0, 0, 0], [10, 20, 0, 10])
    w.close()


@pytest.mark.parametrize("algo", ["one-step-sarsa", "one-step-q"])
def test_other_algorithms_and_double_q_run_on_images(algo: str) -> None:
    w = _learner(IMAGE_CHAIN, envs_per_worker=2, t_max=3, algo=algo, double_q=algo == "one-step-q")
    before = [p.detach().clone() for p in w.model.parameters()]
    for _ in range(3):
        w.run_segment()
    assert np.isfinite(w.last_loss)
    assert any(not torch.equal(a, p) for a, p in zip(before, w.model.parameters(), strict=True))
    w.close()


@pytest.mark.skipif(not HAVE_MINATAR, reason="the 'minatar' extra is not installed; make test installs it")
def test_minatar_learner_runs_segments_on_the_numpy_conv_engine() -> None:
    """A real MinAtar game through the numpy conv engine: segments update the flat shared weights
    (one flat gradient, the optimizer's flat path), and the loss it reports equals the torch
    engine's on the same batch."""
    w = _learner("MinAtar/Seaquest-v1", envs_per_worker=4, t_max=5, algo="n-step-q")
    assert isinstance(w.engine, NumpyConvEngine)
    before = [p.detach().clone() for p in w.model.parameters()]
    for _ in range(4):
        w.run_segment()
    assert np.isfinite(w.last_loss) and w.obs_seq.shape == (6, 4, 10, 10, 10)
    assert all(not torch.equal(a, p) for a, p in zip(before, w.model.parameters(), strict=True))
    assert w.optimizer._flat_views() is not None
    obs, actions, y = w.obs_seq[:5].reshape(20, 10, 10, 10), w.act_buf.reshape(20), w.targets().reshape(20)
    ours = w.engine.loss_and_grads(obs, actions, y, "huber")
    assert ours == pytest.approx(TorchEngine(w.model).loss_and_grads(obs, actions, y, "huber"), rel=1e-5)
    w.close()


@pytest.mark.parametrize(("algo", "layer_norm"), [("n-step-q", False), ("dqn", False), ("n-step-q", True)])
def test_a_conv_net_learns_the_image_bandit(tmp_path: Path, algo: str, layer_norm: bool) -> None:
    extra = {"learning_starts": 200, "batch_size": 32, "buffer_size": 5000} if algo == "dqn" else {}
    result = train({"env_id": IMAGE_BANDIT, "algo": algo, "backend": "serial", "workers": 1, "seed": 0,
                    "network": "minatar", "envs_per_worker": 16, "t_max": 1, "lr": 2e-3, "gamma": 0.0,
                    "eps_anneal_steps": 1000, "final_epsilons": [0.05], "final_epsilon_probs": [1.0],
                    "max_steps": 3000, "eval_every_steps": None, "eval_episodes": 100, "layer_norm": layer_norm,
                    "checkpoint_every": None, "progress": False, "run_dir": str(tmp_path / algo), **extra})
    # chance is 0.5; the conv net must find the lit pixel's half wherever it is
    assert result.final_eval["mean"] >= 0.9, result.final_eval


@pytest.mark.parametrize("algo", ["n-step-q", "dqn"])
def test_the_atari_net_learns_the_image_bandit_in_bf16(tmp_path: Path, algo: str) -> None:
    """--precision bf16: the paper's Atari net (20x20 images: its convolutions leave one pixel) under
    torch.autocast learns as the float32 nets above do."""
    extra = {"learning_starts": 200, "batch_size": 32, "buffer_size": 5000} if algo == "dqn" else {}
    result = train({"env_id": IMAGE_BANDIT, "env_kwargs": {"size": 20}, "algo": algo, "backend": "serial",
                    "workers": 1, "seed": 0, "network": "atari", "precision": "bf16", "envs_per_worker": 16,
                    "t_max": 1, "lr": 1e-3, "gamma": 0.0, "eps_anneal_steps": 1000, "final_epsilons": [0.05],
                    "final_epsilon_probs": [1.0], "max_steps": 4000, "eval_every_steps": None,
                    "eval_episodes": 100, "checkpoint_every": None, "progress": False,
                    "run_dir": str(tmp_path / algo), **extra})
    assert result.final_eval["mean"] >= 0.9, result.final_eval


def test_bf16_forward_and_gradient_are_float32_s_within_bf16_rounding() -> None:
    """The Atari net under --precision bf16: Q-values come out float32 (the last layer runs in full
    precision) and within bf16's rounding of the float32 forward; the loss and the gradient too."""
    from asyncdqn.model import build_network

    model = build_network("nature", (4, 84, 84), 6, (), 0, layer_norm=True)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (16, 4, 84, 84), dtype=np.uint8)
    actions, y = rng.integers(0, 6, 16), rng.standard_normal(16).astype(np.float32)
    grads = {}
    for bf16 in (False, True):
        engine = TorchEngine(model, bf16=bf16)
        q = engine.online(obs)
        assert q.dtype == np.float32
        grads[bf16] = (q, engine.loss_and_grads(obs, actions, y, "mse"),
                       np.concatenate([p.grad.numpy().ravel() for p in model.parameters()]))
    (q32, l32, g32), (q16, l16, g16) = grads[False], grads[True]
    assert not np.array_equal(q32, q16)  # bf16 did run
    np.testing.assert_allclose(q16, q32, atol=0.05 * np.abs(q32).max())
    assert l16 == pytest.approx(l32, rel=0.05)
    cos = float(g16 @ g32 / (np.linalg.norm(g16) * np.linalg.norm(g32)))
    assert cos > 0.99, cos


def test_bf16_is_refused_for_the_nets_of_the_numpy_engines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for env, net in (("CartPole-v1", "mlp"), (IMAGE_CHAIN, "minatar")):
        code = main(["train", "--env", env, "--precision", "bf16", "--max-steps", "100", "--no-progress",
                     "--run-dir", str(tmp_path / net)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "precision: bf16 is for the Atari nets" in err[0], err
        assert f"this run's {net} net" in err[0]


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize(("args", "fragment"), [
    (["--env-kwargs", "{bad json"], "env_kwargs: not valid JSON"),
    (["--env-kwargs", "[1, 2]"], "env_kwargs: must be a JSON object"),
    (["--env", DICT_OBS], "['image'] is an image inside a Dict"),
    (["--env", IMAGE_CHAIN, "--network", "mlp"], "network: --network mlp needs a 1-D observation"),
    (["--env", "CartPole-v1", "--network", "atari"], "network: --network atari needs an image"),
    (["--env", IMAGE_CHAIN, "--algo", "dqn", "--backend", "ray"], "--backend ray is for the asynchronous"),
    (["--env", "CartPole-v1", "--env-kwargs", '{"no_such_arg": 1}'], "no_such_arg"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], fragment: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--max-steps", "100", "--no-progress", "--run-dir", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("asyncdqn: error: ") and fragment in err[0], err


@pytest.mark.skipif(not HAVE_ALE, reason="the 'atari' extra (ale-py) is not installed; make test installs it")
def test_unknown_atari_game_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--env", "ALE/NoSuchGame-v5", "--max-steps", "100", "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "NoSuchGame" in err[0], err


# ------------------------------------------------------------ the CLI
def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=ENV, capture_output=True, text=True, timeout=600)


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0 and "Traceback" not in r.stderr, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _batch(jobs: dict[str, list[str]]) -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {k: pool.submit(_run, v) for k, v in jobs.items()}
        return {k: f.result() for k, f in futures.items()}


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MINATAR, reason="the 'minatar' extra is not installed; make test installs it")
def test_minatar_train_evaluate_render_resume_dqn_compare(tmp_path: Path) -> None:
    quick = ["--env", "MinAtar/Breakout-v1", "--max-steps", "3000", "--eval-every-steps", "1500",
             "--eval-episodes", "2", "--screen-episodes", "2", "--no-progress"]
    a, d = tmp_path / "async", tmp_path / "dqn"
    first = _batch({
        "async": ["train", *quick, "--workers", "2", "--run-dir", str(a), "--tensorboard"],
        "dqn": ["train", *quick, "--algo", "dqn", "--learning-starts", "500", "--run-dir", str(d)],
    })
    _ok(first["async"])
    _ok(first["dqn"])
    cfg = json.loads((a / "config.json").read_text())
    assert cfg["network"] == "auto" and cfg["env_spec"]["obs_shape"] == [4, 10, 10]
    assert cfg["optimizer"] == "adam" and cfg["envs_per_worker"] == 16  # the preset
    assert any((a / "tensorboard").iterdir())
    second = _batch({
        "eval": ["evaluate", str(a), "--episodes", "3", "--json"],
        "render": ["render", str(d), "--out", str(tmp_path / "b.gif"), "--max-steps", "40"],
        "resume": ["train", "--resume", str(a), "--max-steps", "5000", "--no-progress"],
        "compare": ["compare", str(a), str(d), "--out", str(tmp_path / "cmp")],
    })
    ev = json.loads(_ok(second["eval"]))
    assert ev["episodes"] == 3 and all(r >= 0 for r in ev["returns"])
    _ok(second["render"])
    from PIL import Image

    with Image.open(tmp_path / "b.gif") as gif:
        assert min(gif.size) >= 160 and gif.n_frames >= 2  # MinAtar's 10x10 board, scaled up
    assert "resuming" in second["resume"].stderr
    _ok(second["resume"])
    assert json.loads((a / "eval.json").read_text())["total_steps"] >= 5000
    _ok(second["compare"])
    assert (tmp_path / "cmp.png").exists()


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ALE, reason="the 'atari' extra (ale-py) is not installed; make test installs it")
def test_atari_pixels_and_ram_train_evaluate_render(tmp_path: Path) -> None:
    quick = ["--max-steps", "400", "--max-episode-steps", "60", "--workers", "1", "--envs-per-worker", "2",
             "--eval-every-steps", "200", "--eval-episodes", "1", "--screen-episodes", "1", "--no-progress"]
    px, ram = tmp_path / "pong", tmp_path / "ram"
    first = _batch({
        "pixels": ["train", "--env", "ALE/Pong-v5", *quick, "--run-dir", str(px)],
        "ram": ["train", "--env", "ALE/Breakout-v5", "--env-kwargs", '{"obs_type": "ram"}', *quick,
                "--run-dir", str(ram)],
        "nature": ["train", "--env", "ALE/Breakout-v5", "--network", "nature", "--layer-norm", *quick,
                   "--run-dir", str(tmp_path / "nature")],
    })
    _ok(first["pixels"])
    _ok(first["ram"])
    _ok(first["nature"])
    nature = asyncdqn.load_policy(tmp_path / "nature", "final")
    assert nature.network.layer_norm and type(nature.network).__name__ == "NatureQNetwork"
    assert nature.config.eval_epsilon == 0.05  # the Atari preset's
    assert json.loads((px / "config.json").read_text())["env_spec"]["obs_shape"] == [4, 84, 84]
    raw = json.loads((ram / "config.json").read_text())
    assert raw["env_kwargs"] == {"obs_type": "ram"} and raw["env_spec"]["obs_shape"] == [128]
    second = _batch({
        "eval": ["evaluate", str(px), "--episodes", "1", "--json"],
        "render": ["render", str(px), "--out", str(tmp_path / "pong.mp4"), "--max-steps", "20"],
        "eval_ram": ["evaluate", str(ram), "--episodes", "1", "--json"],
    })
    ev = json.loads(_ok(second["eval"]))
    assert ev["episodes"] == 1 and ev["mean_length"] == 60  # capped in agent steps
    assert -21 <= ev["mean"] <= 21  # a raw Pong score
    _ok(second["render"])
    assert (tmp_path / "pong.mp4").stat().st_size > 1000
    _ok(second["eval_ram"])
