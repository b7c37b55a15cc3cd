"""Pixel preprocessing (envs/pixels.py) against hand-made fake environments with known
frames, rewards and lives, and the real ALE / MinAtar envs when their extras are installed."""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest

from asyncdqn.envs import check_spaces, make_env
from asyncdqn.envs import pixels as envs_pixels
from asyncdqn.envs.pixels import EpisodicLife, FireReset, ImageToChannelsFirst, atari_preprocessing, channels_last
from asyncdqn.errors import EnvError

HAVE_ALE = importlib.util.find_spec("ale_py") is not None
HAVE_MINATAR = importlib.util.find_spec("minatar") is not None
NEEDS_ALE = pytest.mark.skipif(not HAVE_ALE,
                               reason="the 'atari' extra (ale-py) is not installed; make test installs it")
NEEDS_MINATAR = pytest.mark.skipif(not HAVE_MINATAR,
                                   reason="the 'minatar' extra is not installed; make test installs it")


class FakeAle:
    """The three ALE calls AtariPreprocessing and EpisodicLife make."""

    def __init__(self, game: FakeAtari) -> None:
        self.game = game

    def lives(self) -> int:
        return self.game.lives

    def getScreenGrayscale(self, out: np.ndarray) -> None:
        out[...] = self.game.screen()

    def getScreenRGB(self, out: np.ndarray) -> None:
        out[...] = self.game.screen()[..., None]


class FakeAtari(gym.Env):  # type: ignore[type-arg]
    """A scripted 'emulator' without frame skip: frame f (1-based, counted since the last hard
    reset) shows a uniform screen of value f % 256 and pays rewards[f-1] (0 past the script).
    A life is lost at each frame in `life_loss_frames`; the game is over when lives reach 0."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, rewards: list[float] | None = None, life_loss_frames: tuple[int, ...] = (), lives: int = 3,
                 game_over_frame: int | None = None) -> None:
        self._frameskip = 1  # AtariPreprocessing insists the env itself does not skip
        self.observation_space = gym.spaces.Box(0, 255, (210, 160), np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self.ale = FakeAle(self)
        self.rewards = rewards or []
        self.life_loss_frames = set(life_loss_frames)
        self.start_lives = lives
        self.game_over_frame = game_over_frame
        self.frame = 0
        self.lives = lives
        self.hard_resets = 0
        self.actions: list[int] = []

    def get_action_meanings(self) -> list[str]:
        return ["NOOP", "FIRE", "RIGHT"]

    def screen(self) -> np.ndarray:
        return np.full((210, 160), self.frame % 256, dtype=np.uint8)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.frame, self.lives = 0, self.start_lives
        self.hard_resets += 1
        return self.screen(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.actions.append(int(action))
        self.frame += 1
        reward = self.rewards[self.frame - 1] if self.frame <= len(self.rewards) else 0.0
        if self.frame in self.life_loss_frames:
            self.lives -= 1
        over = self.lives == 0 or (self.game_over_frame is not None and self.frame >= self.game_over_frame)
        return self.screen(), reward, over, False, {}


def _chain(game: FakeAtari, learning: bool, noop_max: int = 0,
           fire_reset: bool = False) -> gym.Env:  # type: ignore[type-arg]
    old = envs_pixels.NOOP_MAX
    envs_pixels.NOOP_MAX = noop_max  # the scripted frames are easier to follow without no-op starts
    try:
        return atari_preprocessing(game, learning, fire_reset=fire_reset)
    finally:
        envs_pixels.NOOP_MAX = old


# ------------------------------------------------------------- atari chain
def test_frame_stack_shape_dtype_and_frame_skip_with_max_pool() -> None:
    game = FakeAtari()
    env = _chain(game, learning=False)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    np.testing.assert_array_equal(obs, 0)  # the reset frame, repeated
    obs, *_ = env.step(2)
    assert game.frame == 4 and game.actions == [2, 2, 2, 2]  # one agent step = 4 emulator frames
    # max-pool of frames 3 and 4 -> 4 (uniform screens survive the resize unchanged)
    np.testing.assert_array_equal(obs[-1], 4)
    np.testing.assert_array_equal(obs[:-1], 0)
    obs, *_ = env.step(0)
    np.testing.assert_array_equal(obs[-1], 8)
    np.testing.assert_array_equal(obs[-2], 4)


def test_rewards_summed_over_the_skip_and_clipped_for_learning_only() -> None:
    rewards = [0.0, 3.0, 0.0, 4.0, -1.0, -1.0, -1.0, 0.0]  # agent steps: +7, then -3
    learn, plain = _chain(FakeAtari(rewards), learning=True), _chain(FakeAtari(rewards), learning=False)
    for env in (learn, plain):
        env.reset(seed=0)
    assert [learn.step(0)[1] for _ in range(2)] == [1.0, -1.0]  # sign, as the paper clips
    assert [plain.step(0)[1] for _ in range(2)] == [7.0, -3.0]  # evaluation: the raw score


def test_life_loss_ends_the_learners_episode_but_not_the_game() -> None:
    game = FakeAtari(life_loss_frames=(6,), lives=3)
    env = _chain(game, learning=True)
    env.reset(seed=0)
    assert game.hard_resets == 1
    _, _, term, trunc, _ = env.step(0)  # frames 1-4
    assert not term and not trunc
    _, _, term, _, _ = env.step(0)  # frames 5-8: the life is lost at frame 6
    assert term
    obs, _ = env.reset()  # the learner's next episode continues the same game
    assert game.hard_resets == 1 and game.lives == 2
    assert game.frame == 12  # one no-op agent step (4 frames) instead of a restart
    np.testing.assert_array_equal(obs[-1], 12)


def test_game_over_resets_the_emulator_and_evaluation_plays_whole_games() -> None:
    game = FakeAtari(life_loss_frames=(2, 6, 10), lives=3)  # the third loss is game over
    env = _chain(game, learning=True)
    env.reset(seed=0)
    ends = []
    for _ in range(3):
        _, _, term, _, _ = env.step(0)
        ends.append(term)
        env.reset()
    assert ends == [True, True, True]
    assert game.hard_resets == 2  # only the game over restarted the emulator

    game = FakeAtari(life_loss_frames=(2, 6, 10), lives=3)
    plain = _chain(game, learning=False)
    plain.reset(seed=0)
    terms = [plain.step(0)[2] for _ in range(3)]
    assert terms == [False, False, True]  # lives lost mid-game do not end an evaluation episode


def test_fire_reset_presses_fire_on_reset_and_after_each_lost_life() -> None:
    """FIRE (action 1 of the fake) for one agent step at reset and right after the step that lost a
    life, its frames and reward part of that step; in evaluation the game plays on to its end."""
    game = FakeAtari(rewards=[0.0] * 8 + [0.0, 0.0, 2.0, 0.0], life_loss_frames=(6, 14), lives=2)
    env = _chain(game, learning=False, fire_reset=True)
    env.reset(seed=0)
    assert game.actions == [1] * 4 and game.frame == 4
    _, reward, term, _, _ = env.step(2)  # frames 5-8: the life is lost at frame 6, then FIRE (frames 9-12)
    assert game.actions == [1] * 4 + [2] * 4 + [1] * 4
    assert reward == 2.0 and not term  # the FIRE step's reward belongs to this step
    _, _, term, _, _ = env.step(0)  # frames 13-14: the last life goes at 14: game over (the skip stops), no FIRE
    assert term and game.actions[12:] == [0, 0]

    game = FakeAtari(life_loss_frames=(10,), lives=3)  # learning: EpisodicLife above FireReset
    env = _chain(game, learning=True, fire_reset=True)
    env.reset(seed=0)
    _, _, term, _, _ = env.step(0)
    assert not term
    _, _, term, _, _ = env.step(0)  # loses the life, FIRE follows within the step
    assert term and game.actions[-4:] == [1] * 4
    env.reset()  # the learner's next episode continues the game with one no-op step
    assert game.hard_resets == 1 and game.actions[-4:] == [0] * 4
    assert not any(isinstance(w, FireReset) for w in _wrappers(_chain(FakeAtari(), learning=False)))


def _wrappers(env: gym.Env) -> list[gym.Env]:  # type: ignore[type-arg]
    out = []
    e: Any = env
    while isinstance(e, gym.Wrapper):
        out.append(e)
        e = e.env
    return out


def test_noop_starts_take_1_to_30_noops() -> None:
    counts = set()
    for seed in range(12):
        game = FakeAtari()
        env = _chain(game, learning=False, noop_max=30)
        env.reset(seed=seed)
        assert game.actions == [0] * len(game.actions)
        counts.add(len(game.actions))
    assert min(counts) >= 1 and max(counts) <= 30 and len(counts) > 3


def test_episodic_life_alone_reports_loss_only_when_lives_remain() -> None:
    game = FakeAtari(life_loss_frames=(1, 3), lives=2)
    env = EpisodicLife(game)
    env.reset(seed=0)
    assert env.step(0)[2] is True  # frame 1, 2 -> 1 lives: terminal for the learner
    assert not env.game_over
    env.reset()  # frame 2: the no-op that continues the game
    assert game.hard_resets == 1
    _, _, term, _, _ = env.step(0)  # frame 3, 1 -> 0: the game itself is over
    assert term and env.game_over


# ------------------------------------------------------- channel order
@pytest.mark.parametrize(("shape", "last"), [((10, 10, 4), True), ((10, 10, 7), True), ((4, 84, 84), False),
                                             ((84, 84, 3), True), ((3, 64, 96), False), ((64, 96, 3), True)])
def test_channel_order_detection(shape: tuple[int, int, int], last: bool) -> None:
    assert channels_last(shape) is last


class BoolImageEnv(gym.Env):  # type: ignore[type-arg]
    """HWC booleans, like MinAtar: channel c lights pixel (c, c)."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 1, (10, 10, 3), bool)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        o = np.zeros((10, 10, 3), bool)
        for c in range(3):
            o[c, c, c] = True
        return o

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self._obs(), 0.0, False, False, {}


def test_hwc_booleans_become_chw_uint8_0_or_255() -> None:
    env = ImageToChannelsFirst(BoolImageEnv())
    obs, _ = env.reset()
    assert obs.shape == (3, 10, 10) and obs.dtype == np.uint8 and obs.flags["C_CONTIGUOUS"]
    assert env.observation_space.shape == (3, 10, 10)
    expected = np.zeros((3, 10, 10), np.uint8)
    for c in range(3):
        expected[c, c, c] = 255
    np.testing.assert_array_equal(obs, expected)


def test_dict_observation_is_refused_in_one_line() -> None:
    class DictEnv(BoolImageEnv):
        def __init__(self) -> None:
            super().__init__()
            self.observation_space = gym.spaces.Dict({"a": gym.spaces.Box(0, 1, (2,))})

    with pytest.raises(EnvError, match="unsupported observation space Dict") as info:
        check_spaces(DictEnv(), "X")
    assert "\n" not in str(info.value)


# ------------------------------------------------------------ extras
def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(envs_pixels, "_registered", set())
    monkeypatch.setitem(sys.modules, "ale_py", None)  # import ale_py -> ImportError
    with pytest.raises(EnvError, match=r"needs the optional 'atari' extra \(pip install 'asyncdqn\[atari\]'\)"):
        make_env("ALE/Pong-v5")
    monkeypatch.setitem(sys.modules, "minatar.gym", None)
    with pytest.raises(EnvError, match="'minatar' extra"):
        make_env("MinAtar/Breakout-v1")


@NEEDS_ALE
def test_real_ale_learning_and_evaluation_chains() -> None:
    env = make_env("ALE/Breakout-v5", learning=True)
    try:
        obs, _ = env.reset(seed=1)
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
        assert env.unwrapped._frameskip == 1  # type: ignore[attr-defined]  # skipping is the wrapper's job
        names = []
        e: Any = env
        while hasattr(e, "env"):
            names.append(type(e).__name__)
            e = e.env
        assert names[:5] == ["FrameStackObservation", "ClipReward", "EpisodicLife", "FireReset", "AtariPreprocessing"]
    finally:
        env.close()
    plain = make_env("ALE/Breakout-v5", max_episode_steps=7)
    try:
        chain = []
        e = plain
        while hasattr(e, "env"):
            chain.append(type(e).__name__)
            e = e.env
        assert "ClipReward" not in chain and "EpisodicLife" not in chain
        plain.reset(seed=0)
        steps = 0
        while True:
            *_, term, trunc, _ = plain.step(0)
            steps += 1
            if term or trunc:
                break
        assert steps == 7  # --max-episode-steps counts agent steps, above the frame skip
    finally:
        plain.close()


@NEEDS_ALE
def test_real_breakout_without_fire_ends_its_game_thanks_to_fire_reset() -> None:
    """An agent that never presses FIRE: with FireReset (every game whose actions include FIRE) the
    whole game of 5 lives ends within a few hundred agent steps; without it, the ball is never served."""
    import ale_py

    gym.register_envs(ale_py)
    rng = np.random.default_rng(0)

    def steps_to_end(env: gym.Env, cap: int) -> int:  # type: ignore[type-arg]
        env.reset(seed=3)
        for n in range(1, cap + 1):
            if any(env.step(int(rng.choice([0, 2, 3])))[2:4]):  # NOOP, RIGHT, LEFT
                return n
        return cap + 1

    env = make_env("ALE/Breakout-v5")
    bare = atari_preprocessing(gym.make("ALE/Breakout-v5", frameskip=1), learning=False)
    try:
        assert any(isinstance(w, FireReset) for w in _wrappers(env))
        assert steps_to_end(env, 2000) <= 2000
        assert steps_to_end(bare, 600) == 601
    finally:
        env.close()
        bare.close()
    no_fire = make_env("ALE/MsPacman-v5")  # no FIRE action: no FireReset
    try:
        assert not any(isinstance(w, FireReset) for w in _wrappers(no_fire))
    finally:
        no_fire.close()


@NEEDS_ALE
def test_real_ale_ram_is_scaled_floats() -> None:
    env = make_env("ALE/Pong-v5", env_kwargs={"obs_type": "ram"}, learning=True)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (128,) and obs.dtype == np.float32
        assert obs.min() >= 0.0 and obs.max() <= 1.0 and obs.max() > 0.0
        spec = check_spaces(env, "ALE/Pong-v5")
        assert spec.obs_dim == 128 and spec.shape == (128,)
    finally:
        env.close()


@NEEDS_ALE
def test_unknown_game_is_an_env_error() -> None:
    with pytest.raises(EnvError, match="NoSuchGame"):
        make_env("ALE/NoSuchGame-v5")


@NEEDS_MINATAR
def test_real_minatar_is_chw_uint8() -> None:
    env = make_env("MinAtar/Seaquest-v1", learning=True)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (10, 10, 10) and obs.dtype == np.uint8
        assert set(np.unique(obs)) <= {0, 255} and obs.max() == 255
        spec = check_spaces(env, "MinAtar/Seaquest-v1")
        assert spec.shape == (10, 10, 10) and spec.n_actions == 6
    finally:
        env.close()
