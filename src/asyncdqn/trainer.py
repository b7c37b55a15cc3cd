"""A training run, start to finish: its lifecycle, counters, stop rules and files.

    cfg -> run directory (config.json) -> shared model/target/optimizer -> backend, evaluator
        -> loop { collect episodes -> metrics.csv, progress; weight average; snapshot for
                  evaluation when due; record verdicts; checkpoint when due;
                  stop on solve / step budget / time budget }
        -> stop workers and evaluator -> final checkpoint -> final evaluation (time-bounded)
        -> eval.json, plot

The loop never waits on an evaluation: `evaluator.Evaluations` plays snapshots in a
process of its own and hands back verdicts (see there for the protocol, skips of
stale snapshots and restarts).

Checkpoints for `--resume` (model, target, optimizer, counters, trainer state) are
written every --checkpoint-every global env steps from a snapshot taken in the poll
loop while the workers keep running, and on exit; see `checkpoint.CheckpointStore`.
`Trainer.resume` continues a run from its newest valid checkpoint. The run
directory is locked (flock) for the trainer's life.

"Solved" is decided only by an independent greedy evaluation on fresh seeds,
never by a worker's epsilon-greedy training returns: those only *trigger* an
evaluation (training mean over --solve-window episodes >= --solve-score). The time
to solve is when the trainer learns the verdict; the snapshot's own time is kept too.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from asyncdqn.algo.averaging import WeightAverage
from asyncdqn.backends import Backend, make_backend
from asyncdqn.backends.base import TRAINER_POLL_S
from asyncdqn.backends.shared import build_shared, make_obs_stats
from asyncdqn.config import Config, resolve_config, validate
from asyncdqn.envs import inspect_env
from asyncdqn.envs.normalize import Moments, stats_from_tensors, stats_tensors
from asyncdqn.envs.vector import check_vector
from asyncdqn.errors import (
    CheckpointError,
    DivergedError,
    RunDirError,
    TrainingError,
)
from asyncdqn.evaluator import Evaluations, Verdict, Weights, final_eval_seconds
from asyncdqn.model import resolve_network
from asyncdqn.progress import Progress
from asyncdqn.report.plotting import plot_run
from asyncdqn.report.tblog import NullLog, open_log
from asyncdqn.resources import check_resources
from asyncdqn.rundir import layout as rundir
from asyncdqn.rundir.checkpoint import (
    AVERAGE,
    CheckpointStore,
    load_state,
    load_weights,
    prefixed,
    save_checkpoint,
)
from asyncdqn.rundir.fileio import atomic_write_json
from asyncdqn.rundir.metrics import MetricsWriter, truncate_metrics
from asyncdqn.rundir.resume import check_fingerprint, fingerprint, fingerprinted, plan_resume
from asyncdqn.signals import Terminated, TerminationSignals, signal_inside


@dataclass
class TrainResult:
    """What a run produced. `final_eval` is a fresh greedy evaluation of the final weights."""

    run_dir: Path
    solved: bool
    stop_reason: str  # solved | max_steps | max_seconds | interrupted | failed
    total_steps: int
    wall_time_s: float
    steps_per_second: float
    time_to_solve_s: float | None = None  # when the solving verdict reached the trainer
    steps_to_solve: int | None = None  # the solving snapshot's step
    solve_snapshot_wall_s: float | None = None  # when the solving snapshot was taken
    solve_eval: dict[str, Any] | None = None
    best_eval: dict[str, Any] | None = None
    final_eval: dict[str, Any] = field(default_factory=dict)
    worker_restarts: list[dict[str, Any]] = field(default_factory=list)  # {worker, reason, step} per restart
    error: str | None = None  # why an interrupted or failed run stopped
    backend_stats: dict[str, Any] | None = None  # e.g. the ray backend's exchanges, target syncs and restarts
    evaluator: dict[str, Any] | None = None  # results received, skipped snapshots, evaluator restarts

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["run_dir"] = str(self.run_dir)
        return d


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
        self.spec = inspect_env(cfg.env_id, cfg.max_episode_steps, cfg.env_kwargs)
        check_vector(cfg)  # e.g. --vector envpool for an env EnvPool lacks: before the run dir exists
        make_obs_stats(cfg)  # --normalize-obs bounds of a space without finite bounds: before it too
        # refuse what cannot fit, before any file is written
        check_resources(cfg, self.spec.obs_dim, self.spec.n_actions, obs_shape=self.spec.shape)
        self.path, lock = rundir.create_locked_run_dir(cfg, self.spec)
        with self._holding(lock):
            self._setup()

    @contextlib.contextmanager
    def _holding(self, lock: rundir.RunLock) -> Iterator[None]:
        """Hold the run directory's lock for the trainer's life: released at once if the set-up
        in this block fails, otherwise when run() ends (or by close())."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(lock)
            yield
            self._held = stack.pop_all()

    def close(self) -> None:
        """Release the run directory without training (run() does this itself)."""
        self._held.close()

    def _setup(self) -> None:
        cfg = self.cfg
        self.ckpt_dir = self.path / rundir.CHECKPOINTS
        self.store = CheckpointStore(self.ckpt_dir, cfg.keep_checkpoints)
        self.shared = build_shared(cfg, self.spec)
        self.window: deque[float] = deque(maxlen=cfg.solve_window)
        self.evals = Evaluations(cfg, self.shared.model, self.spec.shape, self.spec.n_actions, self._wall,
                                 self._save_best, self._time_left)
        self.tb: NullLog = NullLog()  # --tensorboard sink, opened in run()
        self.start_step = 0  # global env step this session starts from
        self.wall_offset = 0.0  # training seconds of earlier sessions
        self.resumed_from: Path | None = None
        self.last_checkpoint: Path | None = None
        # --average-steps: the Polyak-averaged weights that are evaluated and returned
        self.average = (None if cfg.average_steps is None
                        else WeightAverage(self.shared.model.state_dict(), cfg.average_steps, 0))
        self.t0: float | None = None  # monotonic clock at the run's (virtual) start, set by run()
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
        with self._holding(rundir.RunLock(run.path)):
            self._resume_from(run, overrides or {})
        return self

    def _resume_from(self, run: rundir.Run, overrides: dict[str, Any]) -> None:
        loaded = CheckpointStore(run.path / rundir.CHECKPOINTS, run.config.keep_checkpoints).latest()
        plan = plan_resume(run, loaded, overrides)
        cfg, src, t = plan.cfg, loaded.path, loaded.tensors
        self.cfg = cfg
        self.spec = inspect_env(cfg.env_id, cfg.max_episode_steps, cfg.env_kwargs)
        check_vector(cfg)
        if (self.spec.obs_dim, self.spec.n_actions) != (run.obs_dim, run.n_actions):
            raise CheckpointError(f"{cfg.env_id} now has observation size {self.spec.obs_dim} and "
                                  f"{self.spec.n_actions} actions; the run was trained with {run.obs_dim} and "
                                  f"{run.n_actions}")
        check_resources(cfg, self.spec.obs_dim, self.spec.n_actions, obs_shape=self.spec.shape)
        self._setup()
        s = self.shared
        load_weights(s.model, t, "model.", str(src))
        load_weights(s.target.model, t, "target.", str(src))
        s.target.load([p.detach().numpy().copy() for p in s.target.model.parameters()],  # its sync count too
                      int(loaded.meta.get("target_syncs", 0)), int(loaded.meta.get("target_last_sync_step", 0)))
        try:
            s.optimizer.load_state_tensors({k[len("optim."):]: v for k, v in t.items() if k.startswith("optim.")})
        except ValueError as exc:
            raise CheckpointError(f"{src}: optimizer state does not match ({exc})") from None
        check_fingerprint(loaded, run)
        s.counter.restore(plan.step, plan.per_worker)
        if self.average is not None:  # from the restored weights, unless the checkpoint holds the average
            self.average = WeightAverage(s.model.state_dict(), self.average.time_constant, plan.step)
            if any(k.startswith(AVERAGE) for k in t):
                load_state(self.average.state, t, AVERAGE, str(src))
        saved_stats = stats_from_tensors(t)
        if s.obs_stats is not None and saved_stats is not None:
            s.obs_stats.load(*saved_stats)  # the running statistics continue where they were
        if "rng.torch" in t:
            torch.set_rng_state(t["rng.torch"])
        state = plan.trainer_state
        self.evals.round = int(state.get("eval_round", 0))
        self.evals.best = state.get("best")
        self.window.extend(float(x) for x in state.get("window", []))
        self.start_step, self.wall_offset = plan.step, plan.wall_s
        self.resumed_from = self.last_checkpoint = src
        dropped = truncate_metrics(self.path / rundir.METRICS, plan.step)
        rundir.record_resume(self.path, cfg, plan.step, plan.changed)
        print(f"asyncdqn: resuming {self.path} from {src.name} (step {plan.step:,}, resume #{cfg.resume_count}"
              + (f", {dropped} metrics rows after it dropped" if dropped else "") + ")", file=sys.stderr)

    # ----------------------------------------------------------- checkpoints
    def _meta(self, step: int) -> dict[str, Any]:
        c = self.cfg
        return {"env_id": c.env_id, "obs_dim": self.spec.obs_dim, "n_actions": self.spec.n_actions,
                "obs_shape": list(self.spec.shape), "network": resolve_network(c.network, self.spec.shape),
                "hidden_sizes": list(c.hidden_sizes), "algo": c.algo, "step": step}

    def _snapshot(self, step: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Copies of everything a resume needs. Workers may keep running meanwhile."""
        s, c = self.shared, self.cfg
        tensors = {**prefixed("model.", s.model.state_dict()),
                   **prefixed("target.", s.target.model.state_dict()),
                   **prefixed("optim.", s.optimizer.state_tensors()),
                   **(prefixed(AVERAGE, self.average.state) if self.average is not None else {}),
                   **self._stats_tensors(self._obs_stats()),
                   "rng.torch": torch.get_rng_state()}
        meta = {**self._meta(step), "per_worker_steps": s.counter.per_worker(),
                "optimizer": c.optimizer, "optimizer_steps": int(s.optimizer.step_count),
                "target_syncs": s.target.syncs, "target_last_sync_step": s.target.last_sync_step,
                "worker_epsilons": list(self.worker_eps),
                "fingerprint": fingerprint(c), "config": fingerprinted(c), "resume_count": c.resume_count,
                "worker_seeds": "env: SeedSequence([seed, 1+worker]) (+ resume_count, restart generation when "
                                "> 0); actions: default_rng([seed, 7919, worker]) (+ the same)",
                "trainer": {"eval_round": self.evals.round, "best": self.evals.best, "window": list(self.window),
                            "wall_time_s": self._wall()}}
        return tensors, meta

    def _obs_stats(self) -> Moments | None:
        """The observation statistics (--normalize-obs) now; None for raw observations."""
        return None if self.shared.obs_stats is None else self.shared.obs_stats.read()

    @staticmethod
    def _stats_tensors(stats: Moments | None) -> dict[str, torch.Tensor]:
        return {} if stats is None else {k: torch.from_numpy(v) for k, v in stats_tensors(*stats).items()}

    def _wall(self) -> float:
        """Training seconds of the whole run so far (earlier sessions included)."""
        return self.wall_offset if self.t0 is None else self._clock()

    def _clock(self) -> float:
        """Seconds of training since the run's start (run() has started)."""
        assert self.t0 is not None
        return time.monotonic() - self.t0

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
    def _policy_weights(self) -> Weights:
        """A copy of the weights the run evaluates and returns: online, or their Polyak average."""
        online = self.shared.model.state_dict()
        if self.average is None:
            return {k: v.detach().numpy().copy() for k, v in online.items()}
        self.average.update(online, self.shared.counter.value)
        return {k: v.numpy() for k, v in self.average.weights(online).items()}

    def _save_best(self, weights: Weights, step: int, best: dict[str, Any], stats: Moments | None) -> None:
        """best.safetensors: the snapshot's weights and the observation statistics it was evaluated with."""
        save_checkpoint(self.ckpt_dir / rundir.BEST,
                        {**prefixed("model.", {k: torch.from_numpy(v) for k, v in weights.items()}),
                         **self._stats_tensors(stats)},
                        {**self._meta(step), "eval": best})

    def _time_left(self) -> float | None:
        """The monotonic time --max-seconds ends training at (bounds an in-process evaluation)."""
        return None if self.t0 is None or self.cfg.max_seconds is None else self.t0 + self.cfg.max_seconds

    # ------------------------------------------------------------------ loop
    def run(self) -> TrainResult:
        """Train until a stop rule fires, then write the final checkpoint, evaluation and eval.json.
        The run directory stays locked until all of it is written."""
        with self._held, TerminationSignals() as signals:  # SIGINT/SIGTERM unwind into the shutdown below
            return self._run(signals)

    def _run(self, signals: TerminationSignals) -> TrainResult:
        c = self.cfg
        self.tb = open_log(c, self.path)  # first: a missing extra fails before metrics.csv is opened
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
            self.evals.open(self.metrics, self.tb, self.start_step)
            stop_reason, solved = self._loop(backend, progress)
        except BaseException as caught:
            # Failure or a signal: stop the workers, keep what can be kept, re-raise.
            # Only an interruption adds a resume checkpoint: after a failure (divergence,
            # dead worker) the last periodic one is the trustworthy state. A signal that
            # arrived inside a native call (Ray's) comes back wrapped: it is still a signal.
            exc = signal_inside(caught) or caught
            with signals.deferred():
                wall, total = self._shutdown(backend, progress, threads, failing=True,
                                             rotate=isinstance(exc, (KeyboardInterrupt, Terminated)),
                                             diverged=isinstance(exc, DivergedError))
                self._write_stopped(exc, backend, wall, total)
            if exc is caught:
                raise
            raise exc from None
        try:
            with signals.deferred():
                wall, total = self._shutdown(backend, progress, threads, failing=False)
            signals.raise_pending()
            final = self.evals.final(self._policy_weights(), total, final_eval_seconds(c, wall), self._obs_stats())
        except BaseException as exc:  # final checkpoint unwritable, or a signal during the final evaluation
            with signals.deferred():
                self.metrics.close()
                self._write_stopped(exc, backend, self._clock(), self.shared.counter.value)
            raise
        self.metrics.close()
        self.tb.close()
        result = TrainResult(
            run_dir=self.path, solved=solved is not None, stop_reason=stop_reason,
            total_steps=total, wall_time_s=wall, steps_per_second=total / max(wall, 1e-9),
            time_to_solve_s=solved.wall_s if solved else None,
            steps_to_solve=solved.step if solved else None,
            solve_snapshot_wall_s=solved.snapshot_wall_s if solved else None,
            solve_eval=solved.result.to_dict() if solved else None,
            best_eval=self.evals.best, final_eval=final.to_dict(), worker_restarts=backend.restart_log(),
            backend_stats=backend.stats(), evaluator=self.evals.report(),
        )
        atomic_write_json(self.path / rundir.EVAL, result.to_dict())
        plot_run(self.path)
        return result

    def _loop(self, backend: Backend, progress: Progress) -> tuple[str, Verdict | None]:
        """Collect episodes, hand snapshots to the evaluator and read its verdicts until a stop rule
        fires; returns (reason, the solving verdict). Nothing here waits on an evaluation."""
        c = self.cfg
        every = c.checkpoint_every
        next_ckpt = None if every is None else (self.start_step // every + 1) * every
        while True:
            for ep in backend.poll(timeout=TRAINER_POLL_S):
                self.metrics.episode(ep.step, self._clock(), ep.worker,
                                     ep.episode_return, ep.length, ep.epsilon)
                self.window.append(ep.episode_return)
                self.worker_eps[ep.worker] = ep.epsilon
                progress.episode(ep.episode_return, ep.epsilon)
                self.tb.episode(ep)
            step = self.shared.counter.value
            if self.average is not None:
                backend.refresh()
                self.average.update(self.shared.model.state_dict(), step)
            self.tb.rates(step, self._clock(), self.shared.counter.per_worker())
            progress.update(step, self._clock(), self.evals.last)

            wall = self._clock()
            if self.evals.due(step, wall, self.window):
                backend.refresh()
                self.evals.submit(step, wall, self._policy_weights(), self._obs_stats())
            for verdict in self.evals.poll(step):
                if verdict.solved:
                    return "solved", verdict
            step = self.shared.counter.value  # an in-process evaluation may have taken a while
            if backend.finished():  # the exit checkpoint follows
                return "max_steps", None
            budget_spent = c.max_steps is not None and step >= c.max_steps  # the exit checkpoint follows
            if next_ckpt is not None and every is not None and step >= next_ckpt and not budget_spent:
                backend.refresh()
                self._periodic_checkpoint(self.shared.counter.value)
                next_ckpt = (step // every + 1) * every
            if c.max_seconds is not None and self._clock() >= c.max_seconds:
                return "max_seconds", None

    def _write_stopped(self, exc: BaseException, backend: Backend, wall: float, total: int) -> None:
        """eval.json of a run cut short by a signal or a failure (no final evaluation)."""
        reason = "interrupted" if isinstance(exc, (KeyboardInterrupt, Terminated)) else "failed"
        result = TrainResult(
            run_dir=self.path, solved=False, stop_reason=reason, total_steps=total, wall_time_s=wall,
            steps_per_second=total / max(wall, 1e-9), best_eval=self.evals.best,
            worker_restarts=backend.restart_log(), evaluator=self.evals.report(),
            error=str(exc) or type(exc).__name__,
        )
        try:
            atomic_write_json(self.path / rundir.EVAL, result.to_dict())
        except OSError as err:
            print(f"asyncdqn: {rundir.EVAL} not written: {err}", file=sys.stderr)

    def _shutdown(self, backend: Backend, progress: Progress, threads: int, failing: bool,
                  rotate: bool = True, diverged: bool = False) -> tuple[float, int]:
        """Stop workers and the evaluator, write the final checkpoint (not of diverged weights).
        Returns (wall time, total steps)."""
        try:
            backend.stop()
        finally:
            self.evals.close()
        wall, total = self._clock(), self.shared.counter.value
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
    (`asyncdqn.rundir.resume.RESUMABLE`); the step and time limits count the whole run.
    """
    return Trainer.resume(run_dir, overrides).run()
