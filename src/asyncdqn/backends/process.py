"""Process backend: one spawn-started process per worker, Hogwild on shared memory.

Each child runs with one thread (torch, OpenMP, OpenBLAS), ignores SIGINT (the
parent coordinates shutdown), exits when the stop event is set, when the step
budget is reached, or when its parent is gone. Episodes and failures travel to
the parent over one queue.
"""

from __future__ import annotations

import os
import queue as queue_mod
import signal
import time
import traceback
from typing import Any

from asyncdqn.backends.base import SPAWN, Backend, SharedTraining
from asyncdqn.config import Config
from asyncdqn.errors import TrainingError
from asyncdqn.worker import ActorLearner, EpisodeRecord

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class _QueueSink:
    def __init__(self, q: Any) -> None:
        self.q = q

    def put(self, record: EpisodeRecord) -> None:
        self.q.put(("episode", record))


def worker_main(cfg: Config, index: int, shared: SharedTraining, q: Any, stop: Any, parent_pid: int) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)
    worker = None
    try:
        worker = ActorLearner(cfg, index, shared.model, shared.optimizer, shared.target, shared.counter,
                              _QueueSink(q))
        while not stop.is_set():
            if cfg.max_steps is not None and shared.counter.value >= cfg.max_steps:
                break
            if os.getppid() != parent_pid:  # orphaned: the trainer died
                return
            worker.run_segment()
        q.put(("done", index, None))
    except BaseException as exc:  # report every failure to the parent, then die
        q.put(("error", index, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        raise SystemExit(1) from None
    finally:
        if worker is not None:
            worker.close()


class ProcessBackend(Backend):
    def __init__(self, cfg: Config, shared: SharedTraining) -> None:
        self.cfg, self.shared = cfg, shared
        self.n = cfg.resolved_workers()
        self.queue: Any = SPAWN.Queue()
        self.stop_event = SPAWN.Event()
        self.procs: list[Any] = []
        self.done: set[int] = set()
        self._stopped = False

    def start(self) -> None:
        for var in _THREAD_VARS:  # children inherit the environment at spawn
            os.environ[var] = "1"
        self.shared.model.share_memory()
        for i in range(self.n):
            p = SPAWN.Process(
                target=worker_main,
                args=(self.cfg, i, self.shared, self.queue, self.stop_event, os.getpid()),
                name=f"asyncdqn-worker-{i}",
                daemon=True,
            )
            p.start()
            self.procs.append(p)

    def _handle(self, msg: tuple[Any, ...], out: list[EpisodeRecord]) -> None:
        kind = msg[0]
        if kind == "episode":
            out.append(msg[1])
        elif kind == "done":
            self.done.add(msg[1])
        elif kind == "error":
            raise TrainingError(f"worker {msg[1]} failed: {msg[2]}")

    def poll(self, timeout: float) -> list[EpisodeRecord]:
        out: list[EpisodeRecord] = []
        try:
            self._handle(self.queue.get(timeout=timeout), out)
            while True:
                self._handle(self.queue.get_nowait(), out)
        except queue_mod.Empty:
            pass
        for i, p in enumerate(self.procs):
            if i not in self.done and p.exitcode is not None:
                # Its last messages may still be in flight: give them a moment.
                self._drain_for(0.5, out)
                if i not in self.done:
                    raise TrainingError(f"worker {i} died unexpectedly (exit code {p.exitcode})")
        return out

    def _drain_for(self, seconds: float, out: list[EpisodeRecord]) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self._handle(self.queue.get(timeout=max(end - time.monotonic(), 0.01)), out)
            except queue_mod.Empty:
                return

    def finished(self) -> bool:
        return len(self.done) == self.n

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.stop_event.set()
        deadline = time.monotonic() + 5.0
        for p in self.procs:
            while p.is_alive() and time.monotonic() < deadline:
                try:  # keep the queue drained so no child blocks on a full pipe
                    self.queue.get(timeout=0.05)
                except queue_mod.Empty:
                    pass
                p.join(timeout=0.0)
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=2.0)
        self.queue.cancel_join_thread()
        self.queue.close()
