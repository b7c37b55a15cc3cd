"""Tiny Gymnasium environments that misbehave on purpose (a helper for the fault tests, not a test).

Use them as ``"fault_envs:<id>"``: Gymnasium imports this module first, so the ids
resolve in spawned worker processes and CLI subprocesses too (with this directory
on PYTHONPATH / sys.path).

The base walk: 2-D observation (position / 20, 1.0), 2 actions, reward 1 per step,
terminates after 20 steps. Faults (per environment instance, counted in steps):

- ``Walk-v0``: no fault.
- ``RaiseOnce-v0``: ``step`` raises RuntimeError once, the first time it is called
  while the file named by $ASYNCDQN_FAULT_FLAG exists (the file is consumed, so
  exactly one environment in one worker raises).
- ``RaiseAlways-v0``: every instance raises RuntimeError at its 30th step.
- ``NaNObs-v0`` / ``NaNReward-v0``: from the 30th step the observation / reward is NaN.
- ``SlowEval-v0``: outside worker processes only (the trainer's evaluator process, or the
  trainer itself), each step sleeps 10 ms and the first one creates the file
  $ASYNCDQN_FAULT_EVAL_MARK.
- Any of them with ``step_sleep=S`` (``--env-kwargs '{"step_sleep": S}'``): each step sleeps S
  seconds (training at a known, slow pace).
- ``NeverEnds-v0``: never terminates and has no time limit (a policy that never ends an
  episode, like a greedy Breakout agent that never serves).
- ``SlowStart-v0``: in a worker process (not the main one, which only inspects the
  spaces), the constructor appends its pid to the file $ASYNCDQN_FAULT_PIDS (if set) and
  sleeps for an hour: a worker that never becomes ready.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

LENGTH = 20
FAULT_AT = 30


class FaultEnv(gym.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, fault: str = "none", step_sleep: float = 0.0) -> None:
        self.fault, self.step_sleep = fault, step_sleep
        if fault == "slow-start" and multiprocessing.parent_process() is not None:
            pids = os.environ.get("ASYNCDQN_FAULT_PIDS")
            if pids:
                with open(pids, "a") as f:
                    f.write(f"{os.getpid()}\n")
            time.sleep(3600)
        self.observation_space = gym.spaces.Box(-10.0, 10.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.pos = 0
        self.steps = 0  # over the instance's lifetime, across episodes

    def _obs(self) -> np.ndarray:
        return np.array([self.pos / LENGTH, 1.0], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.pos = 0
        return self._obs(), {}

    def step(self, action: Any):
        self.steps += 1
        self.pos += 1
        if self.step_sleep:
            time.sleep(self.step_sleep)
        if self.fault == "never-ends":  # walks round and round, never reaching the end
            self.pos %= LENGTH
        obs, reward = self._obs(), 1.0
        late = self.steps >= FAULT_AT
        if self.fault == "raise-once":
            flag = os.environ.get("ASYNCDQN_FAULT_FLAG")
            if flag:
                try:
                    os.unlink(flag)
                except FileNotFoundError:
                    pass
                else:
                    raise RuntimeError("injected environment failure (raise-once)")
        elif self.fault == "raise-always" and self.steps == FAULT_AT:
            raise RuntimeError("injected environment failure (raise-always)")
        elif self.fault == "nan-obs" and late:
            obs[0] = np.nan
        elif self.fault == "nan-reward" and late:
            reward = float("nan")
        elif self.fault == "slow-eval" and not multiprocessing.current_process().name.startswith("asyncdqn-worker"):
            mark = os.environ.get("ASYNCDQN_FAULT_EVAL_MARK")
            if mark and not os.path.exists(mark):
                Path(mark).touch()
            time.sleep(0.01)
        return obs, reward, self.pos >= LENGTH, False, {}


_IDS = {"Walk-v0": "none", "RaiseOnce-v0": "raise-once", "RaiseAlways-v0": "raise-always",
        "NaNObs-v0": "nan-obs", "NaNReward-v0": "nan-reward", "SlowEval-v0": "slow-eval",
        "SlowStart-v0": "slow-start", "NeverEnds-v0": "never-ends"}

for _name, _fault in _IDS.items():
    if _name not in gym.registry:
        gym.register(id=_name, entry_point=FaultEnv, kwargs={"fault": _fault})


def env_id(name: str) -> str:
    return f"fault_envs:{name}"
