"""Pixel environments: Atari (ALE, the `atari` extra) and MinAtar (the `minatar` extra).

Both register their Gymnasium ids only when their package is imported; `register`
does that on demand for `ALE/...` and `MinAtar/...` ids, with a one-line EnvError
naming the extra when the package is missing.

Atari image observations are preprocessed as in the paper, by Gymnasium's own
wrappers (`make_atari`):

    gym.make(id, frameskip=1)            ALE v5 skips 4 frames itself: turned off here so that
                                         AtariPreprocessing skips them and max-pools the last two
    AtariPreprocessing(noop_max=30, frame_skip=4, screen_size=84, grayscale, uint8)
    FireReset                            games whose action meanings include FIRE: press it at the
                                         start of a game and after each lost life (the game waits)
    EpisodicLife                         learning only: a lost life is terminal, the game goes on
    ClipReward(-1, 1)                    learning only
    FrameStackObservation(4)             -> (4, 84, 84) uint8
    TimeLimit(max_episode_steps)         if given: counts agent steps (4 frames each)

Evaluation and rendering use the same chain without the two learning-only
wrappers: whole games, raw score. One agent step is 4 emulator frames (5 agent steps' worth of
frames, 4 of them hidden, when FireReset presses FIRE after a lost life).

Atari RAM (`--env-kwargs '{"obs_type": "ram"}'`) keeps ALE's own frame skip and
goes through the MLP path, scaled to [0, 1] float32 (128 inputs).

MinAtar observations are (10, 10, C) booleans; they are turned into (C, 10, 10)
uint8 in {0, 255}, so every image reaches the network as channels-first uint8 and
the network divides by 255 (`ImageToChannelsFirst`).
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import (
    AtariPreprocessing,
    ClipReward,
    FrameStackObservation,
    TimeLimit,
    TransformObservation,
)

from asyncdqn.errors import EnvError

# family -> (id prefix, module to import, extra that installs it)
FAMILIES = {"atari": ("ALE/", "ale_py", "atari"), "minatar": ("MinAtar/", "minatar.gym", "minatar")}
FRAME_SKIP = 4  # agent steps are this many emulator frames for ALE image observations
FRAME_STACK = 4
NOOP_MAX = 30
SCREEN = 84
_registered: set[str] = set()


def family(env_id: str) -> str | None:
    """'atari', 'minatar' or None (any other Gymnasium id)."""
    for name, (prefix, _, _) in FAMILIES.items():
        if env_id.startswith(prefix):
            return name
    return None


def register(env_id: str) -> str | None:
    """Import the package behind `env_id`'s namespace and register its ids (once). Returns the family."""
    fam = family(env_id)
    if fam is None or fam in _registered:
        return fam
    _, module, extra = FAMILIES[fam]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise EnvError(f"{env_id} needs the optional '{extra}' extra (pip install 'asyncdqn[{extra}]'): "
                       f"{exc}") from None
    if fam == "atari":
        gym.register_envs(mod)
        mod.ALEInterface.setLoggerMode(mod.LoggerMode.Error)  # no "A.L.E: ..." banner per env
    else:
        mod.register_envs()
    _registered.add(fam)
    return fam


def frames_per_step(env_id: str, env_kwargs: dict[str, Any] | None = None) -> int:
    """Emulator frames per agent step (for frame <-> step conversions in reports)."""
    kw = env_kwargs or {}
    if family(env_id) != "atari":
        return 1
    if kw.get("obs_type") == "ram":
        skip = kw.get("frameskip", FRAME_SKIP)
        return int(skip) if isinstance(skip, int) else FRAME_SKIP
    return int(kw.get("frameskip", FRAME_SKIP))


def has_fire(env: gym.Env) -> bool:
    """Does the ALE game behind `env` have a FIRE action (its action meanings, as ale-py reports them)?"""
    meanings = getattr(env.unwrapped, "get_action_meanings", None)
    return meanings is not None and "FIRE" in meanings()


class FireReset(gym.Wrapper):
    """Press FIRE at the start of every game and after every lost life while the game goes on.

    Games such as Breakout wait for FIRE to serve: an agent that has not learned to press it (a
    greedy one early in training) would play on until ALE's 108,000-frame cap, and an evaluation
    of it would take minutes and score nothing. This is the FireResetEnv of OpenAI Baselines and
    Stable-Baselines3 (which press it on reset; here also after a lost life, so evaluations of
    whole games are covered too), applied to every game whose action meanings include FIRE. The
    FIRE step after a lost life is part of the step that lost it (its frames and reward are added);
    the one on reset is part of the reset.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.fire = list(env.unwrapped.get_action_meanings()).index("FIRE")  # type: ignore[attr-defined]
        self.lives = 0

    def _lives(self) -> int:
        return int(self.env.unwrapped.ale.lives())  # type: ignore[attr-defined]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self.env.reset(seed=seed, options=options)
        obs, _, terminated, truncated, info = self.env.step(self.fire)
        if terminated or truncated:  # the game ended on its first step: start it again, without FIRE
            obs, info = self.env.reset(options=options)
        self.lives = self._lives()
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = self._lives()
        if lives < self.lives and not (terminated or truncated):
            obs, fire_reward, terminated, truncated, info = self.env.step(self.fire)
            reward = float(reward) + float(fire_reward)
            lives = self._lives()
        self.lives = lives
        return obs, reward, bool(terminated), bool(truncated), info


class EpisodicLife(gym.Wrapper):
    """A lost life ends the episode for the learner while the game goes on (DQN's rule).

    Gymnasium's `AtariPreprocessing(terminal_on_life_loss=True)` resets the whole game
    at every life lost, so a learner would only ever see first lives; here `step`
    reports terminated=True when the life count drops (and lives remain), and the
    `reset` that follows continues the same game with one no-op step instead of
    restarting it. Only a real game over (or a seeded reset) resets the emulator.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def _lives(self) -> int:
        return int(self.env.unwrapped.ale.lives())  # type: ignore[attr-defined]

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = bool(terminated or truncated)
        lives = self._lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, bool(terminated), bool(truncated), info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if self.game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:  # a life was lost: carry on from where it was lost
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(seed=seed, options=options)
        self.game_over = False
        self.lives = self._lives()
        return obs, info


def make_atari(env_id: str, max_episode_steps: int | None, learning: bool, kwargs: dict[str, Any]) -> gym.Env:
    """An ALE env preprocessed as described in the module docstring."""
    kwargs = dict(kwargs)
    if kwargs.get("obs_type") == "ram":
        env = gym.make(env_id, **kwargs)
        high = float(np.asarray(env.observation_space.high).max())  # type: ignore[attr-defined]
        space = gym.spaces.Box(0.0, 1.0, env.observation_space.shape, np.float32)
        env = TransformObservation(env, lambda o: np.asarray(o, dtype=np.float32) / high, space)
        if has_fire(env):
            env = FireReset(env)
        if learning:
            env = ClipReward(env, -1.0, 1.0)
    else:
        skip = int(kwargs.pop("frameskip", FRAME_SKIP))
        kwargs.pop("obs_type", None)  # AtariPreprocessing reads the screen itself (grayscale)
        base = gym.make(env_id, frameskip=1, **kwargs)
        env = atari_preprocessing(base, learning, skip, fire_reset=has_fire(base))
    if max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps)
    return env


def atari_preprocessing(env: gym.Env, learning: bool, frame_skip: int = FRAME_SKIP,
                        fire_reset: bool = False) -> gym.Env:
    """The paper's preprocessing of an ALE env created with frameskip=1 (see the module docstring);
    `fire_reset` adds FireReset (make_atari: for the games that have FIRE)."""
    env = AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=frame_skip, screen_size=SCREEN,
                             terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    if fire_reset:
        env = FireReset(env)
    if learning:
        env = ClipReward(EpisodicLife(env), -1.0, 1.0)
    return FrameStackObservation(env, FRAME_STACK)


def time_limit(env: gym.Env) -> int | None:
    """max_episode_steps of the outermost TimeLimit wrapper, if any."""
    e: Any = env
    while isinstance(e, gym.Wrapper):
        if isinstance(e, TimeLimit):
            return int(e._max_episode_steps)
        e = e.env
    return None


def channels_last(shape: tuple[int, ...]) -> bool:
    """Is a 3-D image shape (H, W, C) rather than (C, H, W)? The channel axis is the
    one that is not part of a square pair / the smallest one."""
    a, b, c = shape
    if a == b and c != a:
        return True
    if b == c and a != b:
        return False
    return c < a  # neither pair is square: channels are the short axis


class ImageToChannelsFirst(gym.ObservationWrapper):
    """Any 3-D Box image as (C, H, W) uint8: HWC is transposed, booleans become {0, 255},
    so that every image network can divide by 255."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box) and len(space.shape) == 3
        self._transpose = channels_last(space.shape)
        self._bool = space.dtype == np.bool_
        shape = (space.shape[2], space.shape[0], space.shape[1]) if self._transpose else space.shape
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)

    def observation(self, observation: Any) -> np.ndarray:
        o = np.asarray(observation)
        if self._transpose:
            o = o.transpose(2, 0, 1)
        if self._bool or o.dtype == np.bool_:
            return np.ascontiguousarray(o, dtype=np.uint8) * np.uint8(255)
        return np.ascontiguousarray(o, dtype=np.uint8)


def needs_channels_first(env: gym.Env) -> bool:
    """Wrap with ImageToChannelsFirst? (3-D bool or uint8 Box not already CHW uint8)."""
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
        return False
    if space.dtype not in (np.uint8, np.bool_):
        return False
    return space.dtype == np.bool_ or channels_last(space.shape)
