"""Process backend: one spawn-started process per worker, Hogwild on shared memory.

Each child runs with one thread (torch, OpenMP, OpenBLAS), ignores SIGINT and
SIGTERM (the parent coordinates shutdown), and exits when the stop event is set,
when the step budget is reached, or when its parent is gone (PR_SET_PDEATHSIG on
Linux kills it at once; a getppid() check per segment covers other systems).

Every worker talks to the parent over a pipe of its own (episodes, "done", or an
error), written by a feeder thread so that acting never blocks on a slow reader.
One pipe per worker means a worker killed in the middle of a message can only
garble its own pipe, which is thrown away with it.

Failures: a worker that raises TrainingError (non-finite values: a fault of the
shared model or of the environment's numbers) stops the run. Any other exception,
or a death by a signal, restarts the worker (same index, fresh env seeds, the
shared model as it is) while the run's --max-restarts budget lasts; before that,
any shared lock the dead process still held is released (see `OwnedLock`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_connections
from pathlib import Path
from typing import Any

from asyncdqn.backends.base import SPAWN, Backend, RestartBudget, SharedTraining, describe_exit, die_with_parent, log
from asyncdqn.config import Config
from asyncdqn.episodes import EpisodeRecord
from asyncdqn.errors import DivergedError, StartTimeoutError, TrainingError
from asyncdqn.learners.async_q import ActorLearner

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_MAX_MESSAGES_PER_POLL = 20_000
HOLD_LOCK_HOOK = "ASYNCDQN_TEST_HOLD_LOCK"  # test hook, see _hold_lock_for_test


class _PipeSink:
    """Worker side of the pipe: put() only enqueues; a daemon thread does the sending."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._feed, name="asyncdqn-feeder", daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        while (msg := self.q.get()) is not None:
            try:
                self.conn.send(msg)
            except OSError:  # the parent is gone
                return

    def put(self, record: EpisodeRecord) -> None:
        self.q.put(("episode", record))

    def send(self, *msg: Any) -> None:
        self.q.put(msg)

    def close(self, timeout: float) -> None:
        self.q.put(None)
        self.thread.join(timeout)


def _hold_lock_for_test(index: int, generation: int, shared: SharedTraining) -> None:
    """Test hook: with ASYNCDQN_TEST_HOLD_LOCK="<worker>:<lock>[,<lock>...]:<pid file>" set (locks:
    counter, target, optimizer), the first generation of that worker takes those shared
    locks, writes its pid to the file and sleeps holding them (the test then SIGKILLs it)."""
    spec = os.environ.get(HOLD_LOCK_HOOK)
    if not spec or generation != 0:
        return
    worker, names, pid_file = spec.split(":", 2)
    if int(worker) != index:
        return
    locks = {"counter": shared.counter.lock, "target": shared.target.lock, "optimizer": shared.optimizer_lock}
    for name in names.split(","):
        lock = locks[name]
        assert lock is not None
        lock.__enter__()
    Path(pid_file).write_text(str(os.getpid()))
    while True:
        time.sleep(1.0)


def worker_main(cfg: Config, index: int, generation: int, shared: SharedTraining, conn: Any, stop: Any,
                parent_pid: int) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent_pid)
    import torch

    torch.set_num_threads(1)
    # This process is a worker and nothing else: flush denormal floats to zero (numpy and
    # torch alike). Adam's second moments of rarely active units decay into the denormal
    # range, where every elementwise op is several times slower (measured: the shared
    # optimizer step 200 -> 50 us). Values below 1.2e-38 become 0; nothing the learning
    # depends on lives there. Not done in-process (serial backend): it is process-wide.
    torch.set_flush_denormal(True)
    sink = _PipeSink(conn)
    worker = None
    failed = False
    try:
        worker = ActorLearner(cfg, index, shared.model, shared.optimizer, shared.target, shared.counter,
                              sink, generation, shared.obs_stats)
        sink.send("ready")  # the parent stops the run if this does not come within --start-timeout
        _hold_lock_for_test(index, generation, shared)
        while not stop.is_set():
            if cfg.max_steps is not None and shared.counter.value >= cfg.max_steps:
                break
            if os.getppid() != parent_pid:  # orphaned: the trainer died
                return
            worker.run_segment()
        sink.send("done")
    except BaseException as exc:  # report every failure to the parent, then die
        # non-finite values / divergence: never worth a restart
        fatal: bool | str = "diverged" if isinstance(exc, DivergedError) else isinstance(exc, TrainingError)
        message = str(exc) if fatal else f"{type(exc).__name__}: {exc}"  # TrainingError names the worker
        sink.send("error", fatal, message, traceback.format_exc())
        failed = True
    finally:
        if worker is not None:
            with contextlib.suppress(Exception):
                worker.close()
        sink.close(timeout=10.0)
    if failed:
        raise SystemExit(1)


@dataclass
class _Slot:
    """One worker index and its current process (generation = restarts of this index)."""

    index: int
    generation: int
    proc: Any
    conn: Any  # parent's end of the pipe; None once closed
    done: bool = False
    error: tuple[bool | str, str] | None = None  # (fatal or "diverged", message) reported by the worker
    started: float = 0.0  # time.monotonic() at spawn
    ready: bool = False  # built its learner and environments (its "ready" message or first episode arrived)


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Spawn children without re-running the parent's `__main__` script.

    A spawned child runs the parent's main script again (as `__mp_main__`) so that what the
    script defines can be unpickled there. In a ray node group the main script is Ray's worker
    script: every Hogwild worker would import all of Ray for nothing (~0.5 s of CPU each, at
    start-up and at every restart). Hiding the script's path while a child is spawned makes
    multiprocessing skip it; nothing else reads it meanwhile."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or getattr(main, "__spec__", None) is not None:
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


class ProcessBackend(Backend):
    def __init__(self, cfg: Config, shared: SharedTraining, indices: range | None = None,
                 rerun_main: bool = True) -> None:
        """`indices`: the worker indices to run (default: all of cfg's workers); a ray node group
        runs its share of the cluster's workers, with their global indices, on this backend, and
        `rerun_main=False`: its main script is Ray's, which the workers need not run."""
        self.cfg, self.shared, self.rerun_main = cfg, shared, rerun_main
        self.indices = range(cfg.resolved_workers()) if indices is None else indices
        self.n = len(self.indices)
        self.stop_event = SPAWN.Event()
        self.slots: list[_Slot] = []
        self.restarts = RestartBudget(cfg.max_restarts)
        self._stopped = False

    @property
    def procs(self) -> list[Any]:
        return [s.proc for s in self.slots]

    def start(self) -> None:
        for var in _THREAD_VARS:  # children inherit the environment at spawn
            os.environ[var] = "1"
        self.shared.model.share_memory()
        self.slots = [self._spawn(i, 0) for i in self.indices]

    def _spawn(self, index: int, generation: int) -> _Slot:
        reader, writer = SPAWN.Pipe(duplex=False)
        p = SPAWN.Process(
            target=worker_main,
            args=(self.cfg, index, generation, self.shared, writer, self.stop_event, os.getpid()),
            name=f"asyncdqn-worker-{index}",
            daemon=True,
        )
        with contextlib.nullcontext() if self.rerun_main else _main_script_hidden():
            p.start()
        writer.close()  # the child holds the only write end: its death reads as EOF here
        return _Slot(index, generation, p, reader, started=time.monotonic())

    # ------------------------------------------------------------ messages
    def _read(self, slot: _Slot, out: list[EpisodeRecord], limit: int) -> int:
        """Read what is waiting in one worker's pipe (at most `limit` messages)."""
        n = 0
        while slot.conn is not None and n < limit and slot.conn.poll():
            try:
                msg = slot.conn.recv()
            except (EOFError, OSError):  # the worker is gone (a half-sent message dies with it)
                slot.conn.close()
                slot.conn = None
                break
            n += 1
            kind = msg[0]
            if kind == "episode":
                out.append(msg[1])
                slot.ready = True
            elif kind == "ready":
                slot.ready = True
            elif kind == "done":
                slot.done = True
            elif kind == "error":
                slot.error = (msg[1], str(msg[2]))
        return n

    def _receive(self, timeout: float, out: list[EpisodeRecord]) -> None:
        by_conn = {id(s.conn): s for s in self.slots if s.conn is not None}
        if not by_conn:
            time.sleep(timeout)
            return
        budget = _MAX_MESSAGES_PER_POLL
        for conn in wait_connections([s.conn for s in by_conn.values()], timeout):
            budget -= self._read(by_conn[id(conn)], out, max(budget, 1))

    # ---------------------------------------------------------------- poll
    def poll(self, timeout: float) -> list[EpisodeRecord]:
        out: list[EpisodeRecord] = []
        self._receive(timeout, out)
        for slot in self.slots:
            if slot.done or (slot.error is None and slot.proc.exitcode is None):
                continue
            if slot.proc.exitcode is None:  # reported an error and is on its way out
                slot.proc.join(5.0)
                if slot.proc.exitcode is None:
                    slot.proc.kill()
                    slot.proc.join(2.0)
            deadline = time.monotonic() + 2.0  # its last messages: everything up to EOF
            while slot.conn is not None and time.monotonic() < deadline:
                if slot.conn.poll(0.1):
                    self._read(slot, out, _MAX_MESSAGES_PER_POLL)
            if not slot.done and slot.error is None and slot.proc.exitcode == 0:
                slot.done = True  # a clean exit is a finished worker, even if its "done" got lost
            if not slot.done:
                self._after_death(slot)
        self._check_started()
        return out

    def _check_started(self) -> None:
        """StartTimeoutError when a live worker has not become ready within --start-timeout seconds."""
        now, limit = time.monotonic(), self.cfg.start_timeout
        late = [s for s in self.slots if not s.ready and not s.done and s.proc.exitcode is None
                and now - s.started > limit]
        if late:
            which = ", ".join(f"{s.index} (pid {s.proc.pid})" for s in late[:5]) + (" ..." if len(late) > 5 else "")
            raise StartTimeoutError(
                f"{len(late)} of {len(self.slots)} worker process(es) not ready after {limit:g} s (--start-timeout): "
                f"worker {which}; a slow or blocking environment constructor, or an overloaded machine")

    def _after_death(self, slot: _Slot) -> None:
        """A worker died before finishing: free its locks, then restart it or stop the run."""
        i = slot.index
        broken = self.shared.break_locks_of(slot.proc.pid)
        if broken:
            log(f"worker {i} (pid {slot.proc.pid}) died holding the {' and '.join(broken)} lock; released")
        if slot.conn is not None:
            slot.conn.close()
            slot.conn = None
        if slot.error is not None and slot.error[0]:
            raise (DivergedError if slot.error[0] == "diverged" else TrainingError)(slot.error[1])
        reason = slot.error[1] if slot.error is not None else describe_exit(slot.proc.exitcode)
        slot.done = True  # not running any more (if the budget is exhausted, it stays so)
        self.restarts.charge(i, reason, self.shared.counter.value)  # raises past --max-restarts
        self.slots[self.slots.index(slot)] = self._spawn(i, slot.generation + 1)

    def finished(self) -> bool:
        return all(s.done for s in self.slots)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.stop_event.set()
        deadline = time.monotonic() + 5.0
        discard: list[EpisodeRecord] = []
        while any(s.proc.is_alive() for s in self.slots) and time.monotonic() < deadline:
            self._receive(0.05, discard)  # keep the pipes drained so no feeder blocks
            discard.clear()
        for s in self.slots:
            if s.proc.is_alive():  # stuck (or ignoring us): workers ignore SIGTERM, so SIGKILL
                s.proc.kill()
            s.proc.join(2.0)
            if s.conn is not None:
                s.conn.close()
                s.conn = None
            if s.proc.exitcode != 0:  # killed (by us or otherwise): the final checkpoint needs its locks
                self.shared.break_locks_of(s.proc.pid)
