"""SB3 DQN (RL-Zoo LunarLander settings, as in `asyncdqn bench solve`) env steps/s with N torch threads.

    python benchmarks/records/solve-2026-11-26/sb3_threads.py 1          # alone, one thread
    python benchmarks/records/solve-2026-11-26/sb3_threads.py 2          # alone, two threads
    S=benchmarks/records/solve-2026-11-26/sb3_threads.py; python $S 1 a & python $S 1 b; wait   # side by side

Measures 30 s after 2,000 warm-up steps. Used to size `bench solve --parallel`.
"""

import sys
import time

import gymnasium as gym
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback

from asyncdqn.bench.solve import RL_ZOO_EXPLORATION_STEPS, RL_ZOO_LUNARLANDER

WARMUP, SECONDS, TOTAL = 2_000, 30.0, 10**9


class _Window(BaseCallback):
    def _on_step(self) -> bool:
        if self.num_timesteps == WARMUP:
            self.t0 = time.perf_counter()
        return not (self.num_timesteps > WARMUP and time.perf_counter() - self.t0 > SECONDS)


def main() -> None:
    threads = int(sys.argv[1])
    torch.set_num_threads(threads)
    model = DQN("MlpPolicy", gym.make("LunarLander-v3"), seed=0, device="cpu", verbose=0,
                exploration_fraction=RL_ZOO_EXPLORATION_STEPS / TOTAL, **RL_ZOO_LUNARLANDER)
    window = _Window()
    model.learn(TOTAL, callback=window)
    rate = (model.num_timesteps - WARMUP) / (time.perf_counter() - window.t0)
    print(f"threads={threads} {sys.argv[2] if len(sys.argv) > 2 else 'alone'}: {rate:.0f} steps/s", flush=True)


if __name__ == "__main__":
    main()
