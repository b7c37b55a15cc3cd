"""Errors a user can cause. The CLI turns each into a one-line message and exit code 2."""

from __future__ import annotations


class AsyncDQNError(Exception):
    """Base class for every error caused by user input rather than a bug."""


class ConfigError(AsyncDQNError, ValueError):
    """An invalid option: unknown key, wrong type or out-of-range value."""


class EnvError(AsyncDQNError, ValueError):
    """An environment that cannot be created or whose spaces are unsupported."""


class CheckpointError(AsyncDQNError, ValueError):
    """A checkpoint that is missing, corrupt, or does not match the model."""


class RunDirError(AsyncDQNError, ValueError):
    """A run directory that is missing, incomplete or unusable."""


class TrainingError(AsyncDQNError, RuntimeError):
    """Training stopped because of a failure (dead worker, non-finite values)."""


class DivergedError(TrainingError):
    """The shared model diverged (non-finite or runaway values): its weights are not worth saving."""


class StartTimeoutError(TrainingError):
    """Worker processes did not become ready within --start-timeout seconds."""
