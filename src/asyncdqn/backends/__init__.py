"""How workers run: `serial` (in-process, deterministic), `process` (Hogwild, spawn) or `ray`.

All run the very same learners (`learners/`) against the same shared objects, built by
`backends.shared.build_shared`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asyncdqn.config import Config

if TYPE_CHECKING:
    from asyncdqn.backends.base import Backend, SharedTraining


def __getattr__(name: str) -> Any:
    """`Backend` and `SharedTraining` on first use: importing this package (as the Ray parameter
    server's process does, for `backends.ray_server`) must not import torch."""
    if name in ("Backend", "SharedTraining"):
        from asyncdqn.backends import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
