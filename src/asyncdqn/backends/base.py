"""What every backend shares: the objects workers write into, and the Backend interface.

The shared objects are built on multiprocessing primitives from the *spawn*
context, so the same objects serve the serial backend (in-process) and the
process backend (passed to spawn-started children as Process arguments).
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from asyncdqn.episodes import EpisodeRecord
from asyncdqn.errors import TrainingError

SPAWN = mp.get_context("spawn")
_PR_SET_PDEATHSIG = 1
TRAINER_POLL_S = 0.2  # how long the trainer waits in one Backend.poll (episodes, then its own checks)


class OwnedLock:
    """A cross-process lock that records its holder's pid, so a dead holder's hold can be broken.

    A worker SIGKILLed while holding a plain multiprocessing lock leaves it locked
    forever and every other process hangs on it. Here the holder writes its pid into
    shared memory right after acquiring (and clears it right before releasing); the
    parent, once it has seen a worker die, calls `break_if_held_by(pid)`. The few
    instructions between acquiring and writing the pid are covered too: if the lock
    stays taken for `probe_s` with no live holder recorded, it is broken as well.
    Holds are short (a counter add, one copy of the target network), so a live holder
    never keeps it for anything near `probe_s`.
    """

    def __init__(self) -> None:
        self._lock = SPAWN.Lock()
        self._holder = SPAWN.Value("q", 0, lock=False)

    def __enter__(self) -> OwnedLock:
        self._lock.acquire()
        self._holder.value = os.getpid()
        return self

    def __exit__(self, *exc: object) -> None:
        self._holder.value = 0
        self._lock.release()

    @property
    def holder(self) -> int:
        """Pid of the process holding the lock, 0 if none is recorded."""
        return int(self._holder.value)

    def break_if_held_by(self, pid: int, probe_s: float = 1.0) -> bool:
        """Called by the parent after process `pid` died: release a hold it left. True if broken."""
        if self.holder != pid:
            if not self._lock.acquire(timeout=probe_s):
                if self.holder not in (0, pid):  # a live process holds it: not ours to break
                    return False
            else:  # free (or freed meanwhile): nothing to repair
                self._lock.release()
                return False
        self._holder.value = 0
        try:
            self._lock.release()
        except ValueError:  # released meanwhile
            return False
        return True


class SharedCounter:
    """Global env-step count (one locked add per segment) plus per-worker counts."""

    def __init__(self, n_workers: int) -> None:
        self._total = SPAWN.Value("q", 0, lock=False)
        self.lock = OwnedLock()  # guards read-modify-write of _total; reads need no lock
        self._per_worker = SPAWN.Array("q", n_workers, lock=False)

    @property
    def value(self) -> int:
        return int(self._total.value)  # one aligned 64-bit load: never torn

    def add(self, worker: int, n: int) -> tuple[int, int]:
        """Atomically add n; returns (old, new). Exactly one caller sees any given (old, new]."""
        with self.lock:
            old = self._total.value
            self._total.value = old + n
        self._per_worker[worker] += n  # only this worker writes its slot
        return int(old), int(old + n)

    def per_worker(self) -> list[int]:
        return [int(v) for v in self._per_worker]

    def restore(self, total: int, per_worker: list[int]) -> None:
        with self.lock:
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
        self.lock = OwnedLock()
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
        with self.lock:
            for dst, p in zip(arrays, self.model.parameters(), strict=True):
                np.copyto(dst, p.detach().numpy())
            return int(self._version.value)

    def sync_from(self, model: nn.Module, step: int) -> None:
        with self.lock:
            for tp, p in zip(self.model.parameters(), model.parameters(), strict=True):
                tp.data.copy_(p.data)
            self._version.value += 1
            self._syncs.value += 1
            self._last_sync_step.value = step

    def load(self, arrays: list[np.ndarray], syncs: int, last_sync_step: int) -> None:
        """Set the target to `arrays` with its sync count, as decided elsewhere (the ray parameter server)."""
        with self.lock:
            for tp, a in zip(self.model.parameters(), arrays, strict=True):
                np.copyto(tp.detach().numpy(), a.reshape(tuple(tp.shape)))
            self._version.value += 1
            self._syncs.value = syncs
            self._last_sync_step.value = last_sync_step


class SharedObsStats:
    """Observation normalization statistics (count, mean, var per dimension; algo/normalize.py) in
    shared memory. `frozen` (--normalize-obs bounds): fixed at creation. Otherwise (running) every
    worker merges its own batches in (`add`, under the lock, with the parallel formula) and reads
    the merged statistics back (`read`)."""

    def __init__(self, count: float, mean: np.ndarray, var: np.ndarray, frozen: bool) -> None:
        self.dim, self.frozen = len(mean), frozen
        self._buf = SPAWN.Array("d", 1 + 2 * self.dim, lock=False)
        self.lock = OwnedLock()
        self.load(count, mean, var)

    def _view(self) -> np.ndarray:
        return np.ctypeslib.as_array(self._buf)

    def read(self) -> tuple[float, np.ndarray, np.ndarray]:
        with self.lock:
            a = self._view().copy()
        return float(a[0]), a[1:1 + self.dim], a[1 + self.dim:]

    def add(self, count: float, mean: np.ndarray, var: np.ndarray) -> None:
        from asyncdqn.algo.normalize import merge

        with self.lock:
            a = self._view()
            n, m, v = merge(float(a[0]), a[1:1 + self.dim], a[1 + self.dim:], count, mean, var)
            a[0], a[1:1 + self.dim], a[1 + self.dim:] = n, m, v

    def load(self, count: float, mean: np.ndarray, var: np.ndarray) -> None:
        with self.lock:
            a = self._view()
            a[0], a[1:1 + self.dim], a[1 + self.dim:] = count, mean, var


@dataclass
class SharedTraining:
    """Everything the workers share. Passed whole to each child (one pickle keeps identities)."""

    model: nn.Module  # online Q-network, parameters in shared memory
    optimizer: Any  # SharedAdam / SharedRMSprop over model.parameters()
    target: SharedTarget
    counter: SharedCounter
    optimizer_lock: OwnedLock | None = None  # the lock the optimizer was built with, if an OwnedLock
    obs_stats: SharedObsStats | None = None  # --normalize-obs bounds/running; None: raw observations

    def break_locks_of(self, pid: int) -> list[str]:
        """After process `pid` died: release every shared lock it still held. Returns their names."""
        locks = {"step counter": self.counter.lock, "target network": self.target.lock}
        if self.optimizer_lock is not None:
            locks["optimizer"] = self.optimizer_lock
        if self.obs_stats is not None:
            locks["observation statistics"] = self.obs_stats.lock
        return [name for name, lock in locks.items() if lock.break_if_held_by(pid)]


def log(message: str) -> None:
    print(f"asyncdqn: {message}", file=sys.stderr, flush=True)


@dataclass
class RestartBudget:
    """Bounded worker restarts for a whole run (--max-restarts), and their log.

    `charge` records one failure of a worker; it returns normally if the worker may
    be restarted and raises TrainingError once the run has used up its restarts.
    """

    max_restarts: int
    log: list[dict[str, Any]] = field(default_factory=list)

    def charge(self, worker: int, reason: str, step: int, what: str | None = None) -> None:
        """`what` names the restarted unit when it is not one worker (e.g. a ray node group)."""
        name = what or f"worker {worker}"
        if len(self.log) >= self.max_restarts:
            raise TrainingError(f"{name} failed: {reason}; giving up after "
                                f"{len(self.log)} restart(s) (--max-restarts {self.max_restarts})")
        self.log.append({"worker": worker, "reason": reason, "step": step, **({"what": what} if what else {})})
        log(f"{name} failed at step {step:,}: {reason}; restarting it "
            f"({len(self.log)}/{self.max_restarts} restarts used)")


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(0)


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"died unexpectedly (exit code {code})"


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
    """Runs the workers. The trainer calls start(), then poll() in a loop, then stop().

    A worker whose failure may be transient (an exception from its environment, a
    kill) is restarted up to --max-restarts times per run; `restarts` logs them.
    """

    restarts: RestartBudget

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[EpisodeRecord]:
        """Episodes finished since the last call. Raises TrainingError if the run cannot go on."""

    @abc.abstractmethod
    def finished(self) -> bool:
        """True once every worker has stopped on its own (step budget reached)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop all workers and release their resources. Idempotent."""

    def refresh(self) -> None:
        """Bring the trainer's SharedTraining up to date before it is read whole (the weights for an
        evaluation, everything for a checkpoint). The local backends share its memory: nothing to do."""
        return None

    def restart_log(self) -> list[dict[str, Any]]:
        """The worker restarts so far, one {worker, reason, step} each (for eval.json)."""
        return list(self.restarts.log)

    def stats(self) -> dict[str, Any] | None:
        """Backend-specific figures for eval.json (e.g. ray's exchanges and their costs); None if it has none."""
        return None
