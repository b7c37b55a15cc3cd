"""asyncdqn: asynchronous (Hogwild) deep Q-learning on Gymnasium environments.

Notebook use::

    from asyncdqn import Config, train
    result = train(Config(env_id="CartPole-v1", max_steps=100_000))
    print(result.run_dir, result.solved, result.final_eval)
"""

from __future__ import annotations

from asyncdqn.config import Config, resolve_config
from asyncdqn.errors import AsyncDQNError, CheckpointError, ConfigError, EnvError
from asyncdqn.trainer import TrainResult, train

__all__ = [
    "AsyncDQNError",
    "CheckpointError",
    "Config",
    "ConfigError",
    "EnvError",
    "TrainResult",
    "resolve_config",
    "train",
]
__version__ = "0.1.0"
