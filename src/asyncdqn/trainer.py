"""A training run, start to finish: owns counters, evaluation, stop rules, files.

    cfg -> run directory (config.json) -> shared model/target/optimizer -> backend
        -> loop { collect episodes -> metrics.csv, progress; evaluate when due;
                  stop on solve / step budget / time budget }
        -> stop workers -> final checkpoint -> final evaluation -> eval.json, plot

Checkpoints for `--resume` (model, target, optimizer, counters, trainer state) are
written every --checkpoint-every global env steps from a snapshot taken in the poll
loop while the workers keep running, and on exit; see `checkpoint.CheckpointStore`.
`Trainer.resume` continues a run from its newest valid checkpoint. The run
directory is locked (flock) for the trainer's life.

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
from asyncdqn.algo.averaging import WeightAverage
from asyncdqn.algo.optim import SharedAdam, SharedRMSprop
from asyncdqn.backends import SharedTraining, make_backend
from asyncdqn.backends.base import OwnedLock, SharedCounter, SharedTarget
from asyncdqn.checkpoint import AVERAGE, CheckpointStore, load_state, load_weights, prefixed, save_checkpoint
from asyncdqn.config import Config, resolve_config, validate
from asyncdqn.envs import EnvSpec, inspect_env
from asyncdqn.errors import CheckpointError, ConfigError, DivergedError, RunDirError, TrainingError
from asyncdqn.evaluate import EvalResult, evaluate
from asyncdqn.fileio import atomic_write_json
from asyncdqn.metrics import MetricsWriter
from asyncdqn.model import NumpyMLP, build_model, flatten_parameters
from asyncdqn.plotting import plot_run
from asyncdqn.progress import Progress
from asyncdqn.resume import (
    fingerprint,
    fingerprint_diff,
    fingerprinted,
    matches_fingerprint,
    resume_config,
    truncate_metrics,
)
from asyncdqn.signals import Terminated, TerminationSignals
from asyncdqn.tblog import NullLog, open_log
from asyncdqn.vector import check_vector


@dataclass
class TrainResult:
    """What a run produced. `final_eval` is a fresh greedy evaluation of the final weights."""

    run_dir: Path
    solved: bool
    stop_reason: str  # solved | max_steps | max_seconds | interrupted | failed
    total_steps: int
    wall_time_s: float
    steps_per_second: float
    time_to_solve_s: float | None = None
    steps_to_solve: int | None = None
    solve_eval: dict[str, Any] | None = None
    best_eval: dict[str, Any] | None = None
    final_eval: dict[str, Any] = field(default_factory=dict)
    worker_restarts: list[dict[str, Any]] = field(default_factory=list)  # {worker, reason, step} per restart
    error: str | None = None  # why an interrupted or failed run stopped
    backend_stats: dict[str, Any] | None = None  # e.g. the ray backend's staleness and restarts

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["run_dir"] = str(self.run_dir)
        return d


def make_optimizer(cfg: Config, model: torch.nn.Module, lock: Any = None) -> SharedAdam | SharedRMSprop:
    if cfg.optimizer == "rmsprop":
        return SharedRMSprop(model.parameters(), lr=cfg.lr, alpha=cfg.rms_alpha, eps=cfg.rms_eps, lock=lock)
    return SharedAdam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps, lock=lock)


def build_shared(cfg: Config, spec: EnvSpec) -> SharedTraining:
    """The online network, its target copy and the shared optimizer, all in shared memory."""
    model = build_model(spec.obs_dim, spec.n_actions, cfg.hidden_sizes, cfg.seed)
    target_model = copy.deepcopy(model)
    for p in target_model.parameters():
        p.requires_grad_(False)
    flatten_parameters(model)  # one buffer: the shared optimizer updates it in one pass
    model.share_memory()
    target_model.share_memory()
    optimizer_lock = OwnedLock()  # its step count's lock: breakable if a worker dies holding it
    return SharedTraining(
        model=model,
        optimizer=make_optimizer(cfg, model, optimizer_lock),
        optimizer_lock=optimizer_lock,
        target=SharedTarget(target_model),
        counter=SharedCounter(cfg.resolved_workers()),
    )


def _restart_log(backend: Any) -> list[dict[str, Any]]:
    """The backend's worker restarts ({worker, reason, step} each); [] for a backend without restarts."""
    return list(getattr(getattr(backend, "restarts", None), "log", []))


def _as_config(config: Config | dict[str, Any] | None, overrides: dict[str, Any]) -> Config:
    if isinstance(config, Config):
        cfg = config.replace(**overrides) if overrides else config
        validate(cfg)
        return cfg
    return resolve_config({**(config or {}), **overrides})


class Trainer:
    """Runs one training run in a fresh run directory (or continues one: `Trainer.resume`)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.spec = inspect_env(cfg.env_id, cfg.max_episode_steps)
        check_vector(cfg)
        self.path, self.lock = rundir.create_locked_run_dir(cfg, self.spec)
        try:
            self._setup()
        except BaseException:
            self.lock.release()
            raise

    def _setup(self) -> None:
        cfg = self.cfg
        self.ckpt_dir = self.path / rundir.CHECKPOINTS
        self.store = CheckpointStore(self.ckpt_dir, cfg.keep_checkpoints)
        self.shared = build_shared(cfg, self.spec)
        self.window: deque[float] = deque(maxlen=cfg.solve_window)
        self.eval_round = 0
        self.best: dict[str, Any] | None = None
        self.last_eval: EvalResult | None = None
        self.tb: NullLog = NullLog()  # --tensorboard sink, opened in run()
        self.start_step = 0  # global env step this session starts from
        self.wall_offset = 0.0  # training seconds of earlier sessions
        self.resumed_from: Path | None = None
        self.last_checkpoint: Path | None = None
        # --average-steps: the Polyak-averaged weights that are evaluated and returned
        self.average = (None if cfg.average_steps is None
                        else WeightAverage(self.shared.model.state_dict(), cfg.average_steps, 0))
        self._last_average_tick = 0.0
        # each worker's epsilon at its last episode (episode-decay: restored on resume)
        self.worker_eps: list[float | None] = list(cfg.resume_epsilons) + [None] * (
            cfg.resolved_workers() - len(cfg.resume_epsilons))

    # ---------------------------------------------------------------- resume
    @classmethod
    def resume(cls, run_dir: str | Path, overrides: dict[str, Any] | None = None) -> Trainer:
        """Continue the run in `run_dir` from its newest valid checkpoint.

        `overrides` may change only `resume.RESUMABLE` options (stop rules, evaluation,
        output); anything else must equal config.json. Raises RunDirError (missing or
        locked run), CheckpointError (no valid checkpoint, mismatched shapes or config)
        or ConfigError (a fixed option changed).
        """
        run = rundir.load_run(run_dir)
        self = cls.__new__(cls)
        self.path = run.path
        self.lock = rundir.RunLock(run.path)
        try:
            self._resume_from(run, overrides or {})
        except BaseException:
            self.lock.release()
            raise
        return self

    def _resume_from(self, run: rundir.Run, overrides: dict[str, Any]) -> None:
        loaded = CheckpointStore(run.path / rundir.CHECKPOINTS, run.config.keep_checkpoints).latest()
        meta, src = loaded.meta, loaded.path
        step = int(meta.get("step", -1))
        problem = {"env_id": run.config.env_id, "obs_dim": run.obs_dim, "n_actions": run.n_actions}
        wrong = [f"{k}: checkpoint {meta.get(k)!r} vs run {v!r}" for k, v in problem.items() if meta.get(k) != v]
        if wrong:
            raise CheckpointError(f"{src} does not belong to this run ({'; '.join(wrong)})")
        count = max(run.config.resume_count, int(meta.get("resume_count", 0))) + 1
        eps = tuple(run.config.eps_start if e is None else float(e) for e in meta.get("worker_epsilons", []))
        cfg, changed = resume_config(run.config, overrides, count, eps)
        trainer_state = meta.get("trainer") or {}
        wall = float(trainer_state.get("wall_time_s", 0.0))
        if cfg.max_steps is not None and cfg.max_steps <= step:
            raise ConfigError(f"max_steps: the checkpoint is at step {step:,}; give --max-steps above it to continue")
        if cfg.max_seconds is not None and cfg.max_seconds <= wall:
            raise ConfigError(f"max_seconds: the run has trained {wall:.0f} s already (the limit counts the whole "
                              "run); give a larger --max-seconds to continue")
        self.cfg = cfg
        self.spec = inspect_env(cfg.env_id, cfg.max_episode_steps)
        check_vector(cfg)
        if (self.spec.obs_dim, self.spec.n_actions) != (run.obs_dim, run.n_actions):
            raise CheckpointError(f"{cfg.env_id} now has observation size {self.spec.obs_dim} and "
                                  f"{self.spec.n_actions} actions; the run was trained with {run.obs_dim} and "
                                  f"{run.n_actions}")
        self._setup()
        s, t = self.shared, loaded.tensors
        load_weights(s.model, t, "model.", str(src))
        load_weights(s.target.model, t, "target.", str(src))
        try:
            s.optimizer.load_state_tensors({k[len("optim."):]: v for k, v in t.items() if k.startswith("optim.")})
        except ValueError as exc:
            raise CheckpointError(f"{src}: optimizer state does not match ({exc})") from None
        per_worker = [int(v) for v in meta.get("per_worker_steps", [])]
        if len(per_worker) != cfg.resolved_workers():
            raise CheckpointError(f"{src} holds counters of {len(per_worker)} workers; the run has "
                                  f"{cfg.resolved_workers()}")
        # Shapes matched; anything else that shapes training must match too.
        if not matches_fingerprint(meta.get("fingerprint"), run.config):
            diff = fingerprint_diff(meta.get("config") or {}, run.config) or ["no fingerprint in checkpoint"]
            raise CheckpointError(f"{run.path / rundir.CONFIG} differs from the configuration of {src}: "
                                  + "; ".join(diff))
        s.counter.restore(step, per_worker)
        if self.average is not None:  # from the restored weights, unless the checkpoint holds the average
            self.average = WeightAverage(s.model.state_dict(), cfg.average_steps, step)
            if any(k.startswith(AVERAGE) for k in t):
                load_state(self.average.state, t, AVERAGE, str(src))
        if "rng.torch" in t:
            torch.set_rng_state(t["rng.torch"])
        self.eval_round = int(trainer_state.get("eval_round", 0))
        self.best = trainer_state.get("best")
        self.window.extend(float(x) for x in trainer_state.get("window", []))
        self.start_step, self.wall_offset = step, wall
        self.resumed_from = self.last_checkpoint = src
        dropped = truncate_metrics(self.path / rundir.METRICS, step)
        rundir.record_resume(self.path, cfg, step, changed)
        print(f"asyncdqn: resuming {self.path} from {src.name} (step {step:,}, resume #{count}"
              + (f", {dropped} metrics rows after it dropped" if dropped else "") + ")", file=sys.stderr)

    # ----------------------------------------------------------- checkpoints
    def _meta(self, step: int) -> dict[str, Any]:
        c = self.cfg
        return {"env_id": c.env_id, "obs_dim": self.spec.obs_dim, "n_actions": self.spec.n_actions,
                "hidden_sizes": list(c.hidden_sizes), "algo": c.algo, "step": step}

    def _snapshot(self, step: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Copies of everything a resume needs. Workers may keep running meanwhile."""
        s, c = self.shared, self.cfg
        tensors = {**prefixed("model.", s.model.state_dict()),
                   **prefixed("target.", s.target.model.state_dict()),
                   **prefixed("optim.", s.optimizer.state_tensors()),
                   **(prefixed(AVERAGE, self.average.state) if self.average is not None else {}),
                   "rng.torch": torch.get_rng_state()}
        meta = {**self._meta(step), "per_worker_steps": s.counter.per_worker(),
                "optimizer": c.optimizer, "optimizer_steps": int(s.optimizer.step_count),
                "target_syncs": s.target.syncs, "target_last_sync_step": s.target.last_sync_step,
                "worker_epsilons": list(self.worker_eps),
                "fingerprint": fingerprint(c), "config": fingerprinted(c), "resume_count": c.resume_count,
                "worker_seeds": "env: SeedSequence([seed, 1+worker]) (+ resume_count, restart generation when "
                                "> 0); actions: default_rng([seed, 7919, worker]) (+ the same)",
                "trainer": {"eval_round": self.eval_round, "best": self.best, "window": list(self.window),
                            "wall_time_s": self._wall()}}
        return tensors, meta

    def _wall(self) -> float:
        """Training seconds of the whole run so far (earlier sessions included)."""
        t0 = getattr(self, "t0", None)  # set when run() starts
        return self.wall_offset if t0 is None else time.monotonic() - t0

    def _save_training_checkpoint(self, step: int) -> Path:
        """Write checkpoint `step` to the rotation; OSError / TrainingError leave older ones intact."""
        tensors, meta = self._snapshot(step)
        path = self.store.save(step, tensors, meta)
        self.last_checkpoint = path
        return path

    def _periodic_checkpoint(self, step: int) -> None:
        """A periodic checkpoint. A disk error warns and training goes on (the final one decides)."""
        target = self.ckpt_dir / f"ckpt-{step:012d}.safetensors"
        kept = f"{self.last_checkpoint.name} kept" if self.last_checkpoint else "no earlier checkpoint"
        try:
            self._save_training_checkpoint(step)
        except OSError as exc:
            print(f"asyncdqn: warning: checkpoint at step {step:,} not written ({target}: "
                  f"{exc.strerror or exc}); {kept}; training continues", file=sys.stderr)
        except TrainingError as exc:
            raise TrainingError(f"training diverged before step {step:,} ({exc}); {kept}") from None

    def _save_full(self, name: str, step: int, rotate: bool = True) -> None:
        """The exit checkpoint: into the rotation (for --resume), then `name` (final.safetensors)."""
        tensors, meta = self._snapshot(step)
        if rotate:
            self.last_checkpoint = self.store.save(step, tensors, meta)
        save_checkpoint(self.ckpt_dir / name, tensors, meta)

    # ------------------------------------------------------------ evaluation
    def _evaluate(self, q: NumpyMLP, episodes: int) -> EvalResult:
        self.eval_round += 1
        return evaluate(q, self.cfg.env_id, episodes, self.cfg.seed, self.eval_round, self.cfg.max_episode_steps,
                        tick=None if self.average is None else self._tick_average)

    def _eval_now(self, step: int) -> EvalResult:
        """Greedy evaluation of a snapshot of the current weights (workers keep training).

        With a solve score, a short screen of --screen-episodes comes first and the
        full --eval-episodes run only if the screen reaches the score.
        """
        weights = self._policy_weights()
        q = NumpyMLP([w.numpy() for w in weights.values()])
        c = self.cfg
        if c.solve_score is not None and c.screen_episodes < c.eval_episodes:
            result = self._evaluate(q, c.screen_episodes)
            if result.mean < c.solve_score:
                return self._record_eval(result, step, weights)
        return self._record_eval(self._evaluate(q, c.eval_episodes), step, weights)

    def _tick_average(self) -> None:
        """Keep the weight average following the workers while an evaluation runs (at most every 0.1 s)."""
        now = time.monotonic()
        if now - self._last_average_tick >= 0.1:
            self._last_average_tick = now
            assert self.average is not None
            self.average.update(self.shared.model.state_dict(), self.shared.counter.value)

    def _policy_weights(self) -> dict[str, torch.Tensor]:
        """A copy of the weights the run evaluates and returns: online, or their Polyak average."""
        online = self.shared.model.state_dict()
        if self.average is None:
            return {k: v.detach().clone() for k, v in online.items()}
        self.average.update(online, self.shared.counter.value)
        return self.average.weights(online)

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
        with TerminationSignals() as signals:  # SIGINT/SIGTERM unwind into the shutdown below
            return self._run(signals)

    def _run(self, signals: TerminationSignals) -> TrainResult:
        c = self.cfg
        try:
            self.tb = open_log(c, self.path)  # first: a missing extra fails before metrics.csv is opened
        except BaseException:
            self.lock.release()
            raise
        self.metrics = MetricsWriter(self.path / rundir.METRICS)
        backend = make_backend(c, self.shared)
        progress = Progress(c, enabled=c.progress)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        if self.resumed_from is None:
            self.shared.target.sync_from(self.shared.model, 0)  # the target starts as a copy
        self.t0 = time.monotonic() - self.wall_offset  # wall time counts the whole run
        try:
            backend.start()
            stop_reason, solved_at = self._loop(backend, progress)
        except BaseException as exc:
            # Failure or a signal: stop the workers, keep what can be kept, re-raise.
            # Only an interruption adds a resume checkpoint: after a failure (divergence,
            # dead worker) the last periodic one is the trustworthy state.
            try:
                with signals.deferred():
                    wall, total = self._shutdown(backend, progress, threads, failing=True,
                                                 rotate=isinstance(exc, (KeyboardInterrupt, Terminated)),
                                                 diverged=isinstance(exc, DivergedError))
                    self._write_stopped(exc, backend, wall, total)
            finally:
                self.lock.release()
            raise
        try:
            with signals.deferred():
                wall, total = self._shutdown(backend, progress, threads, failing=False)
            signals.raise_pending()
            final_weights = self._policy_weights()
            final = self._evaluate(NumpyMLP([w.numpy() for w in final_weights.values()]), c.eval_episodes)
        except BaseException as exc:  # final checkpoint unwritable, or a signal during the final evaluation
            try:
                with signals.deferred():
                    self.metrics.close()
                    self._write_stopped(exc, backend, time.monotonic() - self.t0, self.shared.counter.value)
            finally:
                self.lock.release()
            raise
        if self.best is None:  # no evaluation during training: the final weights are the best known
            self._record_eval(final, total, final_weights)
        self.metrics.close()
        self.tb.close()
        result = TrainResult(
            run_dir=self.path, solved=solved_at is not None, stop_reason=stop_reason,
            total_steps=total, wall_time_s=wall, steps_per_second=total / max(wall, 1e-9),
            time_to_solve_s=solved_at[0] if solved_at else None,
            steps_to_solve=solved_at[1] if solved_at else None,
            solve_eval=solved_at[2].to_dict() if solved_at else None,
            best_eval=self.best, final_eval=final.to_dict(), worker_restarts=_restart_log(backend),
            backend_stats=backend.stats() if hasattr(backend, "stats") else None,
        )
        try:
            atomic_write_json(self.path / rundir.EVAL, result.to_dict())
            plot_run(self.path)
        finally:
            self.lock.release()
        return result

    def _loop(self, backend: Any, progress: Progress) -> tuple[str, tuple[float, int, EvalResult] | None]:
        """Collect episodes and evaluate until a stop rule fires; returns (reason, solve info)."""
        c = self.cfg
        start = self.start_step
        next_eval = None if c.eval_every_steps is None else (start // c.eval_every_steps + 1) * c.eval_every_steps
        next_eval_time = (None if c.eval_every_seconds is None
                          else time.monotonic() - self.t0 + c.eval_every_seconds)
        every = c.checkpoint_every
        next_ckpt = None if every is None else (start // every + 1) * every
        next_trigger = 0
        while True:
            for ep in backend.poll(timeout=0.2):
                self.metrics.episode(ep.step, time.monotonic() - self.t0, ep.worker,
                                     ep.episode_return, ep.length, ep.epsilon)
                self.window.append(ep.episode_return)
                self.worker_eps[ep.worker] = ep.epsilon
                progress.episode(ep.episode_return, ep.epsilon)
                self.tb.episode(ep)
            step = self.shared.counter.value
            if self.average is not None:
                self.average.update(self.shared.model.state_dict(), step)
            self.tb.rates(step, time.monotonic() - self.t0, self.shared.counter.per_worker())
            progress.update(step, time.monotonic() - self.t0, self.last_eval)

            wall = time.monotonic() - self.t0
            due = ((next_eval is not None and step >= next_eval)
                   or (next_eval_time is not None and wall >= next_eval_time))
            triggered = (c.eval_trigger and c.solve_score is not None and step >= next_trigger
                         and len(self.window) == self.window.maxlen
                         and float(np.mean(self.window)) >= c.solve_score)
            if due or triggered:
                result = self._eval_now(step)
                if c.eval_every_steps is not None:
                    next_eval = (step // c.eval_every_steps + 1) * c.eval_every_steps
                if c.eval_every_seconds is not None:  # the next check is due N s after this one ended
                    next_eval_time = time.monotonic() - self.t0 + c.eval_every_seconds
                if triggered:  # don't re-trigger on every poll
                    next_trigger = step + max(c.eval_every_steps or 0, 10_000) // 4
                if (c.solve_score is not None and result.episodes >= c.eval_episodes
                        and result.mean >= c.solve_score):
                    return "solved", (time.monotonic() - self.t0, step, result)
            if backend.finished():  # the exit checkpoint follows
                return "max_steps", None
            budget_spent = c.max_steps is not None and step >= c.max_steps  # the exit checkpoint follows
            if next_ckpt is not None and every is not None and step >= next_ckpt and not budget_spent:
                self._periodic_checkpoint(step)
                next_ckpt = (step // every + 1) * every
            if c.max_seconds is not None and time.monotonic() - self.t0 >= c.max_seconds:
                return "max_seconds", None

    def _write_stopped(self, exc: BaseException, backend: Any, wall: float, total: int) -> None:
        """eval.json of a run cut short by a signal or a failure (no final evaluation)."""
        reason = "interrupted" if isinstance(exc, (KeyboardInterrupt, Terminated)) else "failed"
        result = TrainResult(
            run_dir=self.path, solved=False, stop_reason=reason, total_steps=total, wall_time_s=wall,
            steps_per_second=total / max(wall, 1e-9), best_eval=self.best,
            worker_restarts=_restart_log(backend),
            error=str(exc) or type(exc).__name__,
        )
        try:
            atomic_write_json(self.path / rundir.EVAL, result.to_dict())
        except OSError as err:
            print(f"asyncdqn: {rundir.EVAL} not written: {err}", file=sys.stderr)

    def _shutdown(self, backend: Any, progress: Progress, threads: int, failing: bool,
                  rotate: bool = True, diverged: bool = False) -> tuple[float, int]:
        """Stop workers and write the final checkpoint (not of diverged weights). Returns (wall time, total steps)."""
        backend.stop()
        wall, total = time.monotonic() - self.t0, self.shared.counter.value
        progress.close()
        torch.set_num_threads(threads)
        kept = f"{self.last_checkpoint} is kept" if self.last_checkpoint else "no earlier checkpoint exists"
        try:
            if diverged:  # finite perhaps, but runaway: saving them would only bury the last good state
                raise TrainingError("the weights diverged")
            self._save_full(rundir.FINAL, total, rotate)
        except TrainingError as exc:
            if not failing:
                raise
            # Non-finite weights after a failure: keep whatever was saved before.
            print(f"asyncdqn: final checkpoint not written: {exc}; {kept}", file=sys.stderr)
        except OSError as exc:
            msg = (f"cannot write the final checkpoint in {self.ckpt_dir}: {exc.strerror or exc}"
                   + (f" ({exc.filename})" if exc.filename else "") + f"; {kept}")
            if not failing:
                self.metrics.close()
                raise RunDirError(msg) from None
            print(f"asyncdqn: {msg}", file=sys.stderr)
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


def resume(run_dir: str | Path, **overrides: Any) -> TrainResult:
    """Continue the run in `run_dir` from its newest valid checkpoint and return its result.

    Keyword overrides may change only stop rules, evaluation and output options
    (`asyncdqn.resume.RESUMABLE`); the step and time limits count the whole run.
    """
    return Trainer.resume(run_dir, overrides).run()
