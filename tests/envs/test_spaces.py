"""Observation spaces beyond the 1-D Box: flattened once at env creation (envs/spaces.py), learned
by the learners, restored by load_policy. One tiny environment per space (spaces_envs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.spaces.utils import flatten, flatten_space
from spaces_envs import KINDS, LENGTH, SpaceLoopEnv, encode, make_space, space_id

import asyncdqn
from asyncdqn.envs import inspect_env, make_env, raw_observation_space
from asyncdqn.envs.spaces import flat_space
from asyncdqn.errors import EnvError

# Hand-written flat observation of cell 2 per space (Dict parts in key order: bits, pos).
CELL2 = {
    "discrete": [0, 0, 1, 0, 0],
    "multidiscrete": [0, 0, 1, 0, 0, 1, 0],
    "multibinary": [0, 0, 1, 0, 0],
    "box2d": [2, 0, 0, 3],
    "tuple": [0, 0, 1, 0, 0, 0.4],
    "dict": [0, 1, 0, 0, 1, 0, 0],
}


@pytest.mark.parametrize("kind", KINDS)
def test_env_creation_flattens_to_a_float32_vector(kind: str) -> None:
    spec = inspect_env(space_id(kind))
    want = flatten_space(make_space(kind))
    assert spec.obs_shape == want.shape and spec.obs_dim == len(CELL2[kind])
    env = make_env(space_id(kind))
    space = env.observation_space
    assert isinstance(space, gym.spaces.Box) and space.dtype == np.float32 and space.shape == want.shape
    np.testing.assert_array_equal(space.low, want.low.astype(np.float32))
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and space.contains(obs)
    np.testing.assert_allclose(obs, flatten(make_space(kind), encode(kind, 0)))
    env.step(0)
    obs, *_ = env.step(1)  # cell 0 -> 1 -> 2
    np.testing.assert_allclose(obs, np.asarray(CELL2[kind], dtype=np.float32), rtol=1e-6)
    assert raw_observation_space(space_id(kind)) == make_space(kind)


def test_an_image_inside_a_dict_is_refused_with_its_reason() -> None:
    with pytest.raises(EnvError, match=r"\['image'\] is an image inside a Dict: the conv nets take one"):
        inspect_env(space_id("dict-image"))


class _TextEnv(gym.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    observation_space = gym.spaces.Text(5)
    action_space = gym.spaces.Discrete(2)


def test_a_space_without_fixed_size_is_refused() -> None:
    with pytest.raises(EnvError, match=r"Text has no fixed size"):
        flat_space(_TextEnv.observation_space)
    with pytest.raises(EnvError, match=r"\[1\] Text has no fixed size"):
        flat_space(gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Text(3))))


TINY = {"backend": "serial", "workers": 1, "envs_per_worker": 4, "hidden_sizes": [32], "t_max": 4,
        "gamma": 0.9, "lr": 3e-3, "eps_anneal_steps": 2000, "final_epsilons": [0.1],
        "final_epsilon_probs": [1.0], "target_update_steps": 200, "solve_score": 1.0, "max_steps": 20_000,
        "eval_every_steps": 1000, "eval_episodes": 5, "screen_episodes": 5, "progress": False,
        "checkpoint_every": None, "seed": 3}


@pytest.mark.parametrize("kind", KINDS)
def test_each_space_is_learned_and_its_policy_reloads(kind: str, tmp_path: Path) -> None:
    """The greedy policy scores 1 only if it reads every cell from the flattened observation."""
    result = asyncdqn.train({**TINY, "env_id": space_id(kind), "run_dir": str(tmp_path / kind)})
    assert result.solved, result.best_eval
    policy = asyncdqn.load_policy(tmp_path / kind)
    assert policy.evaluate(episodes=4, seed=9).mean == pytest.approx(1.0)
    # raw observations (as the env returns them) and flat ones give the same action
    for c in range(LENGTH - 1):
        flat = flatten(make_space(kind), encode(kind, c)).astype(np.float32)
        assert policy.act(encode(kind, c)) == policy.act(flat) == c % 2
    assert policy.act(np.stack([flatten(make_space(kind), encode(kind, c)) for c in range(4)])).tolist() == [0, 1, 0, 1]


def test_the_test_env_needs_the_observation() -> None:
    """A fixed action cannot score 1: the learning test above would fail for a blind network."""
    for a in (0, 1):
        env = SpaceLoopEnv("discrete")
        env.reset(seed=0)
        total, done = 0.0, False
        while not done:
            _, r, done, trunc, _ = env.step(a)
            total += r
            done = done or trunc
        assert total <= 1.0 / (LENGTH - 1)
