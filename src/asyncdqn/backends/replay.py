"""Replay backend: the replay-buffer DQN learner, run in this process (`--algo dqn`).

Same contract as the serial backend: each poll() runs about `chunk_steps` env
steps and returns the episodes that finished, so the trainer evaluates, logs and
stops a dqn run exactly like an asynchronous one.
"""

from __future__ import annotations

from asyncdqn.backends.base import Backend, ListSink, SharedTraining
from asyncdqn.config import Config
from asyncdqn.dqn import DQNLearner
from asyncdqn.worker import EpisodeRecord


class ReplayBackend(Backend):
    def __init__(self, cfg: Config, shared: SharedTraining, chunk_steps: int = 2000) -> None:
        self.cfg, self.shared = cfg, shared
        self.chunk_steps = chunk_steps
        self.sink = ListSink()
        self.learner: DQNLearner | None = None
        self._done = False

    def start(self) -> None:
        s = self.shared
        self.learner = DQNLearner(self.cfg, s.model, s.optimizer, s.target, s.counter, self.sink)

    def _budget_reached(self) -> bool:
        return self.cfg.max_steps is not None and self.shared.counter.value >= self.cfg.max_steps

    def poll(self, timeout: float) -> list[EpisodeRecord]:
        assert self.learner is not None, "start() first"
        start = self.shared.counter.value
        while not self._done and self.shared.counter.value - start < self.chunk_steps:
            if self._budget_reached():
                self._done = True
                break
            self.learner.run_segment()
        return self.sink.drain()

    def finished(self) -> bool:
        return self._done

    def stop(self) -> None:
        if self.learner is not None:
            self.learner.close()
            self.learner = None
        self._done = True
