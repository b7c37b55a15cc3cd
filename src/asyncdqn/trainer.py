"""A training run, start to finish: owns counters, evaluation, stop rules, files.

    cfg -> run directory (config.json) -> shared model/target/optimizer -> backend
        -> loop { collect episodes -> metrics.csv, progress; evaluate when due;
                  stop on solve / step budget / time budget }
        -> stop workers -> final checkpoint -> final evaluation -> eval.json, plot

"Solved" is decided only by an independent greedy evaluation on fresh seeds,
never by a worker's epsilon-greedy training returns: those only *trigger* an
evaluation (training mean over --solve-window episodes >= --solve-score).
"""

from __future__ import annotations

import copy
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asyncdqn import rundir
from asyncdqn.algo.optim import SharedAdam, SharedRMSprop
from asyncdqn.backends import SharedTraining, make_backend
from asyncdqn.backends.base import SharedCounter, SharedTarget
from asyncdqn.checkpoint import prefixed, save_checkpoint
from asyncdqn.config import Config, resolve_config, validate
from asyncdqn.envs import EnvSpec, inspect_env
from asyncdqn.errors import TrainingError
from asyncdqn.evaluate import EvalResult, evaluate
from asyncdqn.fileio import atomic_write_json
from asyncdqn.metrics import MetricsWriter
from asyncdqn.model import NumpyMLP, build_model
from asyncdqn.plotting import plot_run
from asyncdqn.progress import Progress
from asyncdqn.tblog import NullLog, open_log


@dataclass
class TrainResult:
    """What a run produced. `final_eval` is a fresh greedy evaluation of the final weights."""

    run_dir: Path
    solved: bool
    stop_reason: str  # solved | max_steps | max_seconds | interrupted
    total_steps: int
    wall_time_s: float
    steps_per_second: float
    time_to_solve_s: float | None = None
    steps_to_solve: int | None = None
    solve_eval: dict[str, Any] | None = None
    best_eval: dict[str, Any] | None = None
    final_eval: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["run_dir"] = str(self.run_dir)
        return d


def make_optimizer(cfg: Config, model: torch.nn.Module) -> SharedAdam | SharedRMSprop:
    if cfg.optimizer == "rmsprop":
        return SharedRMSprop(model.parameters(), lr=cfg.lr, alpha=cfg.rms_alpha, eps=cfg.rms_eps)
    return SharedAdam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)


def build_shared(cfg: Config, spec: EnvSpec) -> SharedTraining:
    """The online network, its target copy and the shared optimizer, all in shared memory."""
    model = build_model(spec.obs_dim, spec.n_actions, cfg.hidden_sizes, cfg.seed)
    target_model = copy.deepcopy(model)
    for p in target_model.parameters():
        p.requires_grad_(False)
    model.share_memory()
    target_model.share_memory()
    return SharedTraining(
        model=model,
        optimizer=make_optimizer(cfg, model),
        target=SharedTarget(target_model),
        counter=SharedCounter(cfg.resolved_workers()),
    )


def _as_config(config: Config | dict[str, Any] | None, overrides: dict[str, Any]) -> Config:
    if isinstance(config, Config):
        cfg = config.replace(**overrides) if overrides else config
        validate(cfg)
        return cfg
    return resolve_config({**(config or {}), **overrides})


class Trainer:
    """Runs one training run in a fresh run directory."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.spec = inspect_env(cfg.env_id, cfg.max_episode_steps)
        self.path = rundir.create_run_dir(cfg, self.spec)
        self.ckpt_dir = self.path / rundir.CHECKPOINTS
        self.shared = build_shared(cfg, self.spec)
        self.window: deque[float] = deque(maxlen=cfg.solve_window)
        self.eval_round = 0
        self.best: dict[str, Any] | None = None
        self.last_eval: EvalResult | None = None
        self.tb: NullLog = NullLog()  # --tensorboard sink, opened in run()

    # ----------------------------------------------------------- checkpoints
    def _meta(self, step: int) -> dict[str, Any]:
        c = self.cfg
        return {"env_id": c.env_id, "obs_dim": self.spec.obs_dim, "n_actions": self.spec.n_actions,
                "hidden_sizes": list(c.hidden_sizes), "algo": c.algo, "step": step}

    def _save_full(self, name: str, step: int) -> None:
        s = self.shared
        tensors = {**prefixed("model.", s.model.state_dict()),
                   **prefixed("target.", s.target.model.state_dict()),
                   **prefixed("optim.", s.optimizer.state_tensors())}
        save_checkpoint(self.ckpt_dir / name, tensors,
                        {**self._meta(step), "per_worker_steps": s.counter.per_worker()})

    # ------------------------------------------------------------ evaluation
    def _evaluate(self, q: NumpyMLP, episodes: int) -> EvalResult:
        self.eval_round += 1
        return evaluate(q, self.cfg.env_id, episodes, self.cfg.seed, self.eval_round, self.cfg.max_episode_steps)

    def _eval_now(self, step: int) -> EvalResult:
        """Greedy evaluation of a snapshot of the current weights (workers keep training).

        With a solve score, a short screen of --screen-episodes comes first and the
        full --eval-episodes run only if the screen reaches the score.
        """
        weights = {k: v.detach().clone() for k, v in self.shared.model.state_dict().items()}
        q = NumpyMLP([w.numpy() for w in weights.values()])
        c = self.cfg
        if c.solve_score is not None and c.screen_episodes < c.eval_episodes:
            result = self._evaluate(q, c.screen_episodes)
            if result.mean < c.solve_score:
                return self._record_eval(result, step, weights)
        return self._record_eval(self._evaluate(q, c.eval_episodes), step, weights)

    def _record_eval(self, result: EvalResult, step: int, weights: dict[str, torch.Tensor]) -> EvalResult:
        wall = time.monotonic() - self.t0
        self.metrics.evaluation(step, wall, result.mean, result.std, result.episodes)
        self.tb.evaluation(step, result.mean, result.std)
        self.last_eval = result
        # A full evaluation outranks a short screen, whatever the screen's mean.
        full = result.episodes >= self.cfg.eval_episodes
        if self.best is None or (full, result.mean) > (self.best["episodes"] >= self.cfg.eval_episodes,
                                                       self.best["mean"]):
            self.best = {"mean": result.mean, "std": result.std, "episodes": result.episodes,
                         "step": step, "wall_time_s": wall}
            save_checkpoint(self.ckpt_dir / rundir.BEST, prefixed("model.", weights),
                            {**self._meta(step), "eval": self.best})
        return result

    # ------------------------------------------------------------------ loop
    def run(self) -> TrainResult:
        c = self.cfg
        self.tb = open_log(c, self.path)  # first: a missing extra fails before metrics.csv is opened
        self.metrics = MetricsWriter(self.path / rundir.METRICS)
        backend = make_backend(c, self.shared)
        progress = Progress(c, enabled=c.progress)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.shared.target.sync_from(self.shared.model, 0)  # the target starts as a copy
        self.t0 = time.monotonic()
        try:
            backend.start()
            stop_reason, solved_at = self._loop(backend, progress)
        except BaseException:
            # Failure or Ctrl-C: stop the workers, keep what can be kept, re-raise.
            self._shutdown(backend, progress, threads, failing=True)
            raise
        wall, total = self._shutdown(backend, progress, threads, failing=False)
        final = self._evaluate(NumpyMLP.copy_of(self.shared.model), c.eval_episodes)
        if self.best is None:  # no evaluation during training: the final weights are the best known
            weights = {k: v.detach().clone() for k, v in self.shared.model.state_dict().items()}
            self._record_eval(final, total, weights)
        self.metrics.close()
        self.tb.close()
        result = TrainResult(
            run_dir=self.path, solved=solved_at is not None, stop_reason=stop_reason,
            total_steps=total, wall_time_s=wall, steps_per_second=total / max(wall, 1e-9),
            time_to_solve_s=solved_at[0] if solved_at else None,
            steps_to_solve=solved_at[1] if solved_at else None,
            solve_eval=solved_at[2].to_dict() if solved_at else None,
            best_eval=self.best, final_eval=final.to_dict(),
        )
        atomic_write_json(self.path / rundir.EVAL, result.to_dict())
        plot_run(self.path)
        return result

    def _loop(self, backend: Any, progress: Progress) -> tuple[str, tuple[float, int, EvalResult] | None]:
        """Collect episodes and evaluate until a stop rule fires; returns (reason, solve info)."""
        c = self.cfg
        next_eval = c.eval_every_steps
        next_trigger = 0
        while True:
            for ep in backend.poll(timeout=0.2):
                self.metrics.episode(ep.step, time.monotonic() - self.t0, ep.worker,
                                     ep.episode_return, ep.length, ep.epsilon)
                self.window.append(ep.episode_return)
                progress.episode(ep.episode_return, ep.epsilon)
                self.tb.episode(ep)
            step = self.shared.counter.value
            self.tb.rates(step, time.monotonic() - self.t0, self.shared.counter.per_worker())
            progress.update(step, time.monotonic() - self.t0, self.last_eval)

            due = next_eval is not None and step >= next_eval
            triggered = (c.solve_score is not None and step >= next_trigger
                         and len(self.window) == self.window.maxlen
                         and float(np.mean(self.window)) >= c.solve_score)
            if due or triggered:
                result = self._eval_now(step)
                if c.eval_every_steps is not None:
                    next_eval = (step // c.eval_every_steps + 1) * c.eval_every_steps
                if triggered:  # don't re-trigger on every poll
                    next_trigger = step + max(c.eval_every_steps or 0, 10_000) // 4
                if (c.solve_score is not None and result.episodes >= c.eval_episodes
                        and result.mean >= c.solve_score):
                    return "solved", (time.monotonic() - self.t0, step, result)
            if backend.finished():
                return "max_steps", None
            if c.max_seconds is not None and time.monotonic() - self.t0 >= c.max_seconds:
                return "max_seconds", None

    def _shutdown(self, backend: Any, progress: Progress, threads: int, failing: bool) -> tuple[float, int]:
        """Stop workers and write the final checkpoint. Returns (wall time, total steps)."""
        backend.stop()
        wall, total = time.monotonic() - self.t0, self.shared.counter.value
        progress.close()
        torch.set_num_threads(threads)
        try:
            self._save_full(rundir.FINAL, total)
        except TrainingError as exc:
            if not failing:
                raise
            # Non-finite weights after a failure: keep whatever was saved before.
            print(f"asyncdqn: final checkpoint not written: {exc}", file=sys.stderr)
        if failing:
            self.metrics.close()
            self.tb.close()
        return wall, total


def train(config: Config | dict[str, Any] | None = None, **overrides: Any) -> TrainResult:
    """Train and return the run's result.

    `config` is a `Config` (used as is) or a dict of options (environment and named
    presets applied first, like the CLI). Keyword overrides win over both.
    """
    return Trainer(_as_config(config, overrides)).run()
