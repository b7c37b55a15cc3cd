"""What every backend shares: the objects workers write into, and the Backend interface.

The shared objects are built on multiprocessing primitives from the *spawn*
context, so the same objects serve the serial backend (in-process) and the
process backend (passed to spawn-started children as Process arguments).
"""

from __future__ import annotations

import abc
import multiprocessing as mp
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from asyncdqn.worker import EpisodeRecord

SPAWN = mp.get_context("spawn")


class SharedCounter:
    """Global env-step count (one locked add per segment) plus per-worker counts."""

    def __init__(self, n_workers: int) -> None:
        self._total = SPAWN.Value("q", 0)  # carries its own lock
        self._per_worker = SPAWN.Array("q", n_workers, lock=False)

    @property
    def value(self) -> int:
        return int(self._total.value)

    def add(self, worker: int, n: int) -> tuple[int, int]:
        """Atomically add n; returns (old, new). Exactly one caller sees any given (old, new]."""
        with self._total.get_lock():
            old = self._total.value
            self._total.value = old + n
        self._per_worker[worker] += n  # only this worker writes its slot
        return int(old), int(old + n)

    def per_worker(self) -> list[int]:
        return [int(v) for v in self._per_worker]

    def restore(self, total: int, per_worker: list[int]) -> None:
        with self._total.get_lock():
            self._total.value = total
        for i, v in enumerate(per_worker[: len(self._per_worker)]):
            self._per_worker[i] = v


class SharedTarget:
    """The target network in shared memory, with a version number.

    Writers (`sync_from`) and readers (`read_into`, a worker refreshing its local
    copy) hold the same lock, so no reader ever sees a half-copied target; readers
    only take it when the version changed, i.e. once per sync per worker.
    """

    def __init__(self, target_model: nn.Module) -> None:
        self.model = target_model
        self._lock = SPAWN.Lock()
        self._version = SPAWN.Value("q", 0, lock=False)
        self._syncs = SPAWN.Value("q", 0, lock=False)
        self._last_sync_step = SPAWN.Value("q", 0, lock=False)

    @property
    def version(self) -> int:
        return int(self._version.value)

    @property
    def syncs(self) -> int:
        return int(self._syncs.value)

    @property
    def last_sync_step(self) -> int:
        return int(self._last_sync_step.value)

    def read_into(self, arrays: list[np.ndarray]) -> int:
        with self._lock:
            for dst, p in zip(arrays, self.model.parameters(), strict=True):
                np.copyto(dst, p.detach().numpy())
            return int(self._version.value)

    def sync_from(self, model: nn.Module, step: int) -> None:
        with self._lock:
            for tp, p in zip(self.model.parameters(), model.parameters(), strict=True):
                tp.data.copy_(p.data)
            self._version.value += 1
            self._syncs.value += 1
            self._last_sync_step.value = step


@dataclass
class SharedTraining:
    """Everything the workers share. Passed whole to each child (one pickle keeps identities)."""

    model: nn.Module  # online Q-network, parameters in shared memory
    optimizer: Any  # SharedAdam / SharedRMSprop over model.parameters()
    target: SharedTarget
    counter: SharedCounter


class ListSink:
    """Episode sink for in-process workers."""

    def __init__(self) -> None:
        self.records: list[EpisodeRecord] = []

    def put(self, record: EpisodeRecord) -> None:
        self.records.append(record)

    def drain(self) -> list[EpisodeRecord]:
        out, self.records = self.records, []
        return out


class Backend(abc.ABC):
    """Runs the workers. The trainer calls start(), then poll() in a loop, then stop()."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[EpisodeRecord]:
        """Episodes finished since the last call. Raises TrainingError if a worker failed."""

    @abc.abstractmethod
    def finished(self) -> bool:
        """True once every worker has stopped on its own (step budget reached)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop all workers and release their resources. Idempotent."""
