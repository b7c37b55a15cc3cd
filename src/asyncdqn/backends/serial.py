"""Serial backend: the same workers, round-robin in this process. Deterministic for a seed."""

from __future__ import annotations

from asyncdqn.backends.base import Backend, ListSink, SharedTraining
from asyncdqn.config import Config
from asyncdqn.worker import ActorLearner, EpisodeRecord


class SerialBackend(Backend):
    def __init__(self, cfg: Config, shared: SharedTraining, chunk_steps: int = 2000) -> None:
        self.cfg, self.shared = cfg, shared
        self.chunk_steps = chunk_steps
        self.sink = ListSink()
        self.workers: list[ActorLearner] = []
        self._done = False

    def start(self) -> None:
        s = self.shared
        self.workers = [
            ActorLearner(self.cfg, i, s.model, s.optimizer, s.target, s.counter, self.sink)
            for i in range(self.cfg.resolved_workers())
        ]

    def _budget_reached(self) -> bool:
        return self.cfg.max_steps is not None and self.shared.counter.value >= self.cfg.max_steps

    def poll(self, timeout: float) -> list[EpisodeRecord]:
        """Run about `chunk_steps` env steps (one segment per worker in turn), return episodes."""
        start = self.shared.counter.value
        while not self._done and self.shared.counter.value - start < self.chunk_steps:
            for w in self.workers:
                if self._budget_reached():  # same rule as a process worker, checked before each segment
                    self._done = True
                    break
                w.run_segment()
        return self.sink.drain()

    def finished(self) -> bool:
        return self._done

    def stop(self) -> None:
        for w in self.workers:
            w.close()
        self.workers = []
        self._done = True
