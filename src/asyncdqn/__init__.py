"""asyncdqn: asynchronous (Hogwild) deep Q-learning on Gymnasium environments.

Notebook use::

    from asyncdqn import Config, train
    result = train(Config(env_id="CartPole-v1", max_steps=100_000))
    print(result.run_dir, result.solved, result.final_eval)

    from asyncdqn import load_policy
    policy = load_policy(result.run_dir)           # the run's best checkpoint
    action = policy.act(obs)                        # greedy; policy.act(obs, epsilon=0.05) explores
    print(policy.evaluate(episodes=20).mean)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asyncdqn.errors import AsyncDQNError, CheckpointError, ConfigError, EnvError, RunDirError, TrainingError

if TYPE_CHECKING:
    from asyncdqn.config import Config, resolve_config
    from asyncdqn.policy import Policy, load_policy
    from asyncdqn.trainer import TrainResult, resume, train

_LAZY = {"Config": "asyncdqn.config", "resolve_config": "asyncdqn.config",
         "TrainResult": "asyncdqn.trainer", "train": "asyncdqn.trainer", "resume": "asyncdqn.trainer",
         "Policy": "asyncdqn.policy", "load_policy": "asyncdqn.policy"}


def __getattr__(name: str) -> Any:
    """Import torch-heavy parts on first use, so `asyncdqn --help` starts fast."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'asyncdqn' has no attribute {name!r}")

__all__ = [
    "AsyncDQNError",
    "CheckpointError",
    "Config",
    "ConfigError",
    "EnvError",
    "Policy",
    "RunDirError",
    "TrainResult",
    "TrainingError",
    "load_policy",
    "resolve_config",
    "resume",
    "train",
]
__version__ = "0.1.0"
