"""How workers run: `serial` (in-process, deterministic), `process` (Hogwild, spawn) or `ray`.

Both run the very same `ActorLearner` code against the same shared objects.
"""

from __future__ import annotations

from asyncdqn.backends.base import Backend, SharedTraining
from asyncdqn.config import Config


def make_backend(cfg: Config, shared: SharedTraining) -> Backend:
    if cfg.algo == "dqn":  # the replay-buffer baseline: one learner, always in-process
        from asyncdqn.backends.replay import ReplayBackend

        return ReplayBackend(cfg, shared)
    if cfg.backend == "serial":
        from asyncdqn.backends.serial import SerialBackend

        return SerialBackend(cfg, shared)
    if cfg.backend == "ray":
        from asyncdqn.backends.ray import RayBackend  # imports ray lazily, in start()

        return RayBackend(cfg, shared)
    from asyncdqn.backends.process import ProcessBackend

    return ProcessBackend(cfg, shared)


__all__ = ["Backend", "SharedTraining", "make_backend"]
