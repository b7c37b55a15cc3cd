"""Tiny environments, one per observation space (a helper, not a test).

`SpaceLoopEnv`: a chain of LENGTH cells walked from cell 0. In cell c the rewarded action
is c % 2 (one step right, reward 1/(LENGTH-1)); the other action ends the episode. Return
1 (LENGTH - 1 steps) needs every cell read from the observation, so a greedy policy that
scores 1 has learned to read the space; a blind one (a fixed action) scores 1/(LENGTH-1) at most.
A time limit of 20 steps applies.

The position is shown through the space named by `kind`:

- discrete: Discrete(LENGTH) -> c
- multidiscrete: MultiDiscrete([LENGTH, 2]) -> [c, c % 2]
- multibinary: MultiBinary(LENGTH) -> one-hot bits of c
- box2d: Box(0, LENGTH, (2, 2)) float32 -> [[c, 0], [0, LENGTH - c]]
- tuple: Tuple(Discrete(LENGTH), Box(0, 1, (1,))) -> (c, [c / LENGTH])
- dict: Dict(bits=MultiBinary(2), pos=Discrete(LENGTH)) -> {bits: [c % 2, 1 - c % 2], pos: c}
- dict-image: Dict(image=Box(0, 255, (8, 8, 3), uint8), pos=Discrete(LENGTH)): refused by asyncdqn

Ids (importing this module registers them): ``AsyncDQNTest/Space-<kind>-v0``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

LENGTH = 5
KINDS = ("discrete", "multidiscrete", "multibinary", "box2d", "tuple", "dict")


def space_id(kind: str) -> str:
    return f"AsyncDQNTest/Space-{kind}-v0"


def make_space(kind: str) -> gym.Space[Any]:
    n = LENGTH
    spaces: dict[str, gym.Space[Any]] = {
        "discrete": gym.spaces.Discrete(n),
        "multidiscrete": gym.spaces.MultiDiscrete([n, 2]),
        "multibinary": gym.spaces.MultiBinary(n),
        "box2d": gym.spaces.Box(0.0, float(n), (2, 2), np.float32),
        "tuple": gym.spaces.Tuple((gym.spaces.Discrete(n), gym.spaces.Box(0.0, 1.0, (1,), np.float32))),
        "dict": gym.spaces.Dict({"pos": gym.spaces.Discrete(n), "bits": gym.spaces.MultiBinary(2)}),
        "dict-image": gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
                                       "pos": gym.spaces.Discrete(n)}),
    }
    return spaces[kind]


def encode(kind: str, c: int) -> Any:
    """Cell c as an observation of `kind`'s space."""
    n = LENGTH
    if kind == "discrete":
        return c
    if kind == "multidiscrete":
        return np.array([c, c % 2], dtype=np.int64)
    if kind == "multibinary":
        return np.eye(n, dtype=np.int8)[c]
    if kind == "box2d":
        return np.array([[c, 0], [0, n - c]], dtype=np.float32)
    if kind == "tuple":
        return (c, np.array([c / n], dtype=np.float32))
    if kind == "dict":
        return {"pos": c, "bits": np.array([c % 2, 1 - c % 2], dtype=np.int8)}
    return {"image": np.zeros((8, 8, 3), np.uint8), "pos": c}


class SpaceLoopEnv(gym.Env):
    """In cell c the rewarded action is c % 2 (one step right, reward 1/(LENGTH-1)); a wrong
    action terminates. Return 1 (LENGTH - 1 steps) needs every cell read from the observation."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, kind: str = "discrete") -> None:
        self.kind = kind
        self.observation_space = make_space(kind)
        self.action_space = gym.spaces.Discrete(2)
        self.cell = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.cell = 0
        return encode(self.kind, self.cell), {}

    def step(self, action: Any):
        if int(action) != self.cell % 2:
            return encode(self.kind, self.cell), 0.0, True, False, {}
        self.cell += 1
        done = self.cell >= LENGTH - 1
        return encode(self.kind, self.cell), 1.0 / (LENGTH - 1), done, False, {}


for _kind in (*KINDS, "dict-image"):
    if space_id(_kind) not in gym.registry:
        gym.register(id=space_id(_kind), entry_point=SpaceLoopEnv, kwargs={"kind": _kind},
                     max_episode_steps=20)
