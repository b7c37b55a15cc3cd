"""SIGINT / SIGTERM during a training run: stop cleanly, and never twice.

`TerminationSignals` is a context manager around a run. Inside it, in the main
thread, SIGINT raises KeyboardInterrupt (as Python does by default) and SIGTERM
raises `Terminated`; both unwind the trainer's loop -- including an evaluation in
progress, which is plain Python between environment steps -- into its shutdown
path. While that shutdown runs (`deferred()`), further signals are only noted and
acknowledged on stderr, so a second Ctrl-C cannot cut the final checkpoint short;
the shutdown itself is bounded in time (workers get 5 s, then SIGKILL).

The CLI turns the exceptions into exit codes 128 + signal number: 130 for SIGINT,
143 for SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = int(signum)


def exception_for(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def exit_code_for(exc: BaseException) -> int:
    """Shell convention: 128 + the signal's number."""
    signum = exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT)
    return 128 + signum


def signal_inside(exc: BaseException) -> BaseException | None:
    """The KeyboardInterrupt/Terminated behind `exc`, if any. Our handler raises in the main thread
    wherever it is; inside a native call (a ray.get) the library hands it back wrapped, e.g. as a
    SystemError "returned a result with an exception set" caused by it."""
    seen: BaseException | None = exc
    for _ in range(20):  # a chain, not a cycle
        if seen is None:
            return None
        if isinstance(seen, KeyboardInterrupt | Terminated):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def handlers_kept() -> Iterator[None]:
    """Undo whatever SIGINT/SIGTERM handlers the code inside installs. ray.init installs two for
    SIGTERM: a Python one that calls sys.exit(15), and its core worker's native failure handler,
    which logs and aborts (exit 134) before any Python handler runs -- no final checkpoint, no
    eval.json. Re-setting the Python handlers we had puts Python's C trampoline back in front.
    A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: installed outside Python, nothing of ours to restore
                signal.signal(sig, handler)


class TerminationSignals:
    """Install the handlers on enter, restore the previous ones on exit. A no-op outside the main thread."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._deferring = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> TerminationSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in HANDLED:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._deferring:
            self.pending = self.pending or signum
            print(f"asyncdqn: {signal.Signals(signum).name} received while shutting down; "
                  "finishing the shutdown first", file=sys.stderr, flush=True)
            return
        raise exception_for(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Signals arriving inside are remembered, not raised (see `raise_pending`)."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False

    def raise_pending(self) -> None:
        """Raise the first signal that arrived during `deferred()`, if any."""
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise exception_for(signum)
