"""A tiny deterministic Gymnasium environment for the worker tests (a helper, not a test).

The agent walks a chain: the position starts at 0 and every step moves it by +1,
whatever the action (2 actions, so the dynamics are known exactly). The
observation is ``np.array([position], float32)``. The episode *terminates* when the
position reaches ``length``; a ``max_episode_steps`` smaller than ``length``
*truncates* it instead (TimeLimit).

Registered ids (importing this module registers them, idempotently):

- ``AsyncDQNTest/Chain-v0``: length 3, reward 1 per step (return 3, length 3).
- ``AsyncDQNTest/ChainRamp-v0``: length 3, reward = the position reached
  (1, 2, 3: return 6), so a reward shifted by one step shows up in the targets.
- ``AsyncDQNTest/LongChain-v0``: length 1000, reward 1 per step (used with
  ``max_episode_steps`` to force truncation, or as a never-ending chain).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

CHAIN_ID = "AsyncDQNTest/Chain-v0"
RAMP_ID = "AsyncDQNTest/ChainRamp-v0"
LONG_ID = "AsyncDQNTest/LongChain-v0"


class ChainEnv(gym.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, length: int = 3, ramp: bool = False) -> None:
        self.length = length
        self.ramp = ramp
        self.observation_space = gym.spaces.Box(0.0, float(length), shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.pos = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.pos], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.pos = 0
        return self._obs(), {}

    def step(self, action: Any):
        assert self.action_space.contains(action), action
        self.pos += 1
        reward = float(self.pos) if self.ramp else 1.0
        terminated = self.pos >= self.length
        return self._obs(), reward, terminated, False, {}


def _register(env_id: str, **kwargs: Any) -> None:
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=ChainEnv, kwargs=kwargs)


_register(CHAIN_ID, length=3)
_register(RAMP_ID, length=3, ramp=True)
_register(LONG_ID, length=1000)
