"""How workers run: `serial` (in-process, deterministic), `process` (Hogwild, spawn) or `ray`.

All run the very same learners (`learners/`) against the same shared objects, built by
`backends.shared.build_shared`.
"""

from __future__ import annotations

from asyncdqn.backends.base import Backend, SharedTraining
from asyncdqn.config import Config


def make_backend(cfg: Config, shared: SharedTraining) -> Backend:
    if cfg.backend == "serial" or cfg.algo == "dqn":  # dqn: one replay learner, always in-process
        from asyncdqn.backends.serial import SerialBackend

        return SerialBackend(cfg, shared)
    if cfg.backend == "ray":
        from asyncdqn.backends.ray import RayBackend  # imports ray lazily, in start()

        return RayBackend(cfg, shared)
    from asyncdqn.backends.process import ProcessBackend

    return ProcessBackend(cfg, shared)


__all__ = ["Backend", "SharedTraining", "make_backend"]
