"""Serial backend: the run's learners, round-robin in this process. Deterministic for a seed.

It runs any learner (`learners.make_learner`): the asynchronous actor-learners, one
segment each in turn, or the replay-buffer DQN learner (`--algo dqn` always runs here).

A worker whose segment raises (other than TrainingError, a numerical fault that
stops the run) is rebuilt like a restarted process worker: same index, fresh env
seeds, within the run's --max-restarts budget.
"""

from __future__ import annotations

import contextlib

from asyncdqn.backends.base import Backend, ListSink, RestartBudget, SharedTraining
from asyncdqn.config import Config
from asyncdqn.episodes import EpisodeRecord
from asyncdqn.errors import TrainingError
from asyncdqn.learners import make_learner
from asyncdqn.learners.common import Learner
from asyncdqn.signals import signal_inside


class SerialBackend(Backend):
    def __init__(self, cfg: Config, shared: SharedTraining, chunk_steps: int = 2000) -> None:
        self.cfg, self.shared = cfg, shared
        self.chunk_steps = chunk_steps
        self.sink = ListSink()
        self.workers: list[Learner] = []
        self.generations: list[int] = []
        self.restarts = RestartBudget(cfg.max_restarts)
        self._done = False

    def _make(self, index: int, generation: int) -> Learner:
        s = self.shared
        return make_learner(self.cfg, index, s.model, s.optimizer, s.target, s.counter, self.sink, generation,
                            s.obs_stats)

    def start(self) -> None:
        n = self.cfg.resolved_workers()
        self.generations = [0] * n
        self.workers = [self._make(i, 0) for i in range(n)]

    def _budget_reached(self) -> bool:
        return self.cfg.max_steps is not None and self.shared.counter.value >= self.cfg.max_steps

    def _restart(self, index: int, exc: Exception) -> None:
        """Charge a restart (raises TrainingError past the budget) and rebuild worker `index`."""
        with contextlib.suppress(Exception):
            self.workers[index].close()
        while True:
            self.restarts.charge(index, f"{type(exc).__name__}: {exc}", self.shared.counter.value)
            self.generations[index] += 1
            try:
                self.workers[index] = self._make(index, self.generations[index])
                return
            except TrainingError:
                raise
            except Exception as again:  # e.g. the environment cannot be created any more
                exc = again

    def poll(self, timeout: float) -> list[EpisodeRecord]:
        """Run about `chunk_steps` env steps (one segment per worker in turn), return episodes."""
        start = self.shared.counter.value
        while not self._done and self.shared.counter.value - start < self.chunk_steps:
            for i, w in enumerate(self.workers):
                if self._budget_reached():  # same rule as a process worker, checked before each segment
                    self._done = True
                    break
                try:
                    w.run_segment()
                except TrainingError:
                    raise
                except Exception as exc:
                    # Ctrl-C or SIGTERM raised inside a compiled kernel comes back wrapped (numba:
                    # SystemError "returned a result with an exception set"): a stop, not a crash.
                    if (sig := signal_inside(exc)) is not None:
                        raise sig from None
                    self._restart(i, exc)
        return self.sink.drain()

    def finished(self) -> bool:
        return self._done

    def stop(self) -> None:
        for w in self.workers:
            with contextlib.suppress(Exception):
                w.close()
        self.workers = []
        self._done = True
