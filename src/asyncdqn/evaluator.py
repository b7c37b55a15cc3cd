"""A run's greedy evaluations, off the trainer's loop: weight snapshots in, verdicts out.

    trainer loop --submit(step, wall, weights)--> Evaluations --Request--> runner
    trainer loop <--poll(): Verdicts--------------+ (metrics.csv, TensorBoard, best.safetensors)

The protocol, per snapshot: with a solve score, a screen of --screen-episodes
greedy episodes first, and the full --eval-episodes only if the screen reaches the
score; each stage plays `evaluate.evaluate` on a round of fresh seeds of its own,
bounded in time by --eval-episode-seconds. "Solved" needs a complete full
evaluation whose mean reaches --solve-score. With --normalize-obs a snapshot carries
the observation statistics read with its weights: the evaluation normalizes with
them (envs/normalize.py's NormalizedQ), and best.safetensors saves them beside the weights.

Runners: with worker processes (--backend process or ray) a spawn-started
evaluator process plays the episodes, so the trainer keeps polling episodes,
writing metrics, averaging weights, checkpointing and enforcing the stop rules
while an evaluation runs. It evaluates one snapshot at a time; at most one more
waits, and a newer snapshot replaces the waiting one (recorded as skipped: a
stale snapshot is never queued). If the evaluator process dies it is restarted
(within --max-restarts, logged like a worker restart) and the snapshot it held is
evaluated again. With the serial backend (and --algo dqn) the workers run in the
trainer's own process anyway: evaluations run there too, in line, so a serial run
stays deterministic; they end at --max-seconds at the latest.

Times: a verdict counts from the moment the trainer receives it (`wall_s`, the
conservative time of a solve), and keeps the step and wall time of its snapshot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from asyncdqn.backends.base import SPAWN, RestartBudget, describe_exit, die_with_parent
from asyncdqn.config import Config
from asyncdqn.envs.normalize import Moments, NormalizedQ
from asyncdqn.evaluate import EvalResult, QFunction, evaluate
from asyncdqn.model import build_network, q_function_from_weights

# Test hooks, read by whatever plays the evaluation episodes:
SLOW_HOOK = "ASYNCDQN_TEST_SLOW_EVAL"  # seconds to sleep per episode played: a deliberately slow evaluation
PIDS_HOOK = "ASYNCDQN_TEST_EVALUATOR_PIDS"  # file each evaluator process appends its pid to
FINAL_EVAL_MIN_S = 30.0  # the final evaluation's default bound: half the training time, at least this
SKIPS_KEPT = 100  # eval.json lists the newest skipped snapshots, and counts all

Weights = dict[str, np.ndarray]  # a state dict as numpy arrays (pickled to the evaluator process)


@dataclass(frozen=True)
class Request:
    """One snapshot to evaluate. `rounds`: the seed round of each stage (screen, full) or (full,);
    `obs_stats`: the --normalize-obs statistics taken with the weights (None: raw observations)."""

    id: int
    step: int
    wall_s: float
    weights: Weights
    rounds: tuple[int, ...] = ()
    obs_stats: Moments | None = None


@dataclass(frozen=True)
class Verdict:
    """One stage's result, as the trainer recorded it."""

    step: int  # the snapshot's global env step
    snapshot_wall_s: float  # training seconds when the snapshot was taken
    wall_s: float  # training seconds when the result reached the trainer
    result: EvalResult
    full: bool  # a complete evaluation of --eval-episodes episodes
    solved: bool


def final_eval_seconds(cfg: Config, training_s: float) -> float:
    """The final evaluation's time bound: --final-eval-seconds, or half the training time (at least 30 s)."""
    if cfg.final_eval_seconds is not None:
        return cfg.final_eval_seconds
    return max(FINAL_EVAL_MIN_S, 0.5 * training_s)


def play(q: QFunction, cfg: Config, rounds: tuple[int, ...], deadline: float | None = None) -> Iterator[EvalResult]:
    """The protocol: each stage's result in turn; the full stage follows a screen only if it reached the score."""
    slow = float(os.environ.get(SLOW_HOOK) or 0.0)
    for i, rnd in enumerate(rounds):
        screen = i < len(rounds) - 1
        r = evaluate(q, cfg.env_id, cfg.screen_episodes if screen else cfg.eval_episodes, cfg.seed, rnd,
                     cfg.max_episode_steps, env_kwargs=cfg.env_kwargs, episode_seconds=cfg.eval_episode_seconds,
                     deadline=deadline, epsilon=cfg.eval_epsilon)
        if slow:
            time.sleep(slow * r.episodes)
        yield r
        if screen and not (r.complete and cfg.solve_score is not None and r.mean >= cfg.solve_score):
            return


def q_of(template: nn.Module, weights: Weights, obs_stats: Moments | None = None) -> QFunction:
    """The greedy Q-function of a snapshot: `template`'s network with `weights`, fed observations
    normalized with `obs_stats` when the run normalizes them."""
    q: QFunction = q_function_from_weights(template, {k: torch.from_numpy(v) for k, v in weights.items()})
    return q if obs_stats is None else NormalizedQ(q, obs_stats[1], obs_stats[2])


# ------------------------------------------------------------------ runners
class InlineRunner:
    """Plays a request at once, in this process (the serial backend); `deadline()` bounds it."""

    def __init__(self, cfg: Config, template: nn.Module, deadline: Callable[[], float | None]) -> None:
        self.cfg, self.template, self.deadline = cfg, template, deadline
        self.out: list[tuple[Any, ...]] = []
        self.restarts = RestartBudget(0)

    def ready(self) -> bool:
        return True

    def busy(self) -> bool:
        return False

    def start(self, req: Request) -> None:
        for r in play(q_of(self.template, req.weights, req.obs_stats), self.cfg, req.rounds, self.deadline()):
            self.out.append(("result", req.id, r))
        self.out.append(("idle", req.id))

    def receive(self, step: int) -> tuple[list[tuple[Any, ...]], Request | None]:
        out, self.out = self.out, []
        return out, None

    def close(self) -> None:
        self.out = []


def evaluator_main(cfg: Config, shape: tuple[int, ...], n_actions: int, requests: Any, results: Any,
                   parent_pid: int) -> None:
    """Entry point of the evaluator process: play each request's protocol, send back each stage's result."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trainer coordinates shutdown (and kills us)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent_pid)
    torch.set_num_threads(1)
    if pids := os.environ.get(PIDS_HOOK):
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
    try:
        template = build_network(cfg.network, shape, n_actions, cfg.hidden_sizes, 0, cfg.layer_norm)
        results.send(("ready",))
        while True:
            if not requests.poll(1.0):
                if os.getppid() != parent_pid:  # orphaned: the trainer died
                    return
                continue
            msg = requests.recv()
            if msg[0] == "stop":
                return
            req: Request = msg[1]
            for r in play(q_of(template, req.weights, req.obs_stats), cfg, req.rounds):
                results.send(("result", req.id, r))
            results.send(("idle", req.id))
    except (EOFError, BrokenPipeError):  # the trainer is gone
        return
    except BaseException as exc:
        with contextlib.suppress(OSError):
            results.send(("error", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None


class EvaluatorProcess:
    """The evaluator as a spawn-started child, started on first use and restarted if it dies."""

    def __init__(self, cfg: Config, shape: tuple[int, ...], n_actions: int) -> None:
        self.cfg, self.shape, self.n_actions = cfg, shape, n_actions
        self.restarts = RestartBudget(cfg.max_restarts)
        self.proc: Any = None
        self.requests: Any = None  # our write end
        self.results: Any = None  # our read end
        self.started = False  # sent "ready"
        self.in_flight: Request | None = None
        self.error: str | None = None

    def _spawn(self) -> None:
        req_r, req_w = SPAWN.Pipe(duplex=False)
        res_r, res_w = SPAWN.Pipe(duplex=False)
        self.proc = SPAWN.Process(target=evaluator_main, name="asyncdqn-evaluator", daemon=True,
                                  args=(self.cfg, self.shape, self.n_actions, req_r, res_w, os.getpid()))
        self.proc.start()
        req_r.close()
        res_w.close()  # the child holds the only write end: its death reads as EOF here
        self.requests, self.results = req_w, res_r
        self.started, self.error = False, None

    def ready(self) -> bool:
        if self.proc is None:
            self._spawn()
        return self.started and self.in_flight is None

    def busy(self) -> bool:
        return self.in_flight is not None

    def start(self, req: Request) -> None:
        """Hand `req` over on a thread: a snapshot of a large network never stalls the trainer's loop."""
        self.in_flight = req
        conn = self.requests

        def send() -> None:
            with contextlib.suppress(OSError):  # the child died meanwhile: receive() finds out
                conn.send(("eval", req))

        threading.Thread(target=send, name="asyncdqn-eval-send", daemon=True).start()

    def receive(self, step: int) -> tuple[list[tuple[Any, ...]], Request | None]:
        """Messages waiting from the child; and the request a dead child took with it (restarted then)."""
        out: list[tuple[Any, ...]] = []
        if self.proc is None:
            return out, None
        eof = False
        while True:
            try:
                if not self.results.poll():
                    break
                msg = self.results.recv()
            except (EOFError, OSError):
                eof = True
                break
            if msg[0] == "ready":
                self.started = True
            elif msg[0] == "error":
                self.error = str(msg[1])
            else:
                if msg[0] == "idle":
                    self.in_flight = None
                out.append(msg)
        if not eof and self.proc.exitcode is None:
            return out, None
        self.proc.join(0.5)  # its pipe closed: it is exiting (an error it reported), or already gone
        if self.proc.exitcode is None:
            self.proc.kill()
            self.proc.join(1.0)
        reason = self.error or describe_exit(self.proc.exitcode)
        lost, self.in_flight = self.in_flight, None
        self._discard()
        self.restarts.charge(-1, reason, step, what="evaluator process")  # raises past --max-restarts
        return out, lost  # the next ready() starts a new one

    def _discard(self) -> None:
        for conn in (self.requests, self.results):
            with contextlib.suppress(OSError):
                conn.close()
        self.proc = None

    def close(self) -> None:
        """Stop the child now. It holds nothing shared (its snapshots are copies), so a kill is safe."""
        if self.proc is None:
            return
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5.0)
        self._discard()


# -------------------------------------------------------------- the record
class Evaluations:
    """What the trainer knows of its evaluations: rounds used, the best, the last, skips and restarts."""

    def __init__(self, cfg: Config, template: nn.Module, shape: tuple[int, ...], n_actions: int,
                 clock: Callable[[], float],
                 save_best: Callable[[Weights, int, dict[str, Any], Moments | None], None],
                 inline_deadline: Callable[[], float | None]) -> None:
        self.cfg, self.template, self.clock, self.save_best = cfg, template, clock, save_best
        inline = cfg.backend == "serial" or cfg.algo == "dqn"  # the workers run in this process anyway
        self.runner: InlineRunner | EvaluatorProcess = (
            InlineRunner(cfg, template, inline_deadline) if inline else EvaluatorProcess(cfg, shape, n_actions))
        self.round = 0  # seed rounds used so far (restored on resume)
        self.best: dict[str, Any] | None = None
        self.last: EvalResult | None = None
        self.metrics: Any = None  # MetricsWriter and TensorBoard sink, given by the trainer's run (open())
        self.tb: Any = None
        self.pending: Request | None = None
        self.held: dict[int, Request] = {}  # requests being played, by id
        self.skipped: deque[dict[str, Any]] = deque(maxlen=SKIPS_KEPT)  # the newest skips
        self.skips = 0  # all of them
        self.results = 0
        self.next_step: int | None = None  # cadence: the next --eval-every-steps snapshot
        self.next_time: float | None = None  # the next --eval-every-seconds one (None: not yet scheduled)
        self.next_trigger = 0  # the training-mean trigger rests until this step
        self._ids = 0
        self._blind_warned = False

    def open(self, metrics: Any, tb: Any, start_step: int) -> None:
        """Start recording into the run's metrics.csv and TensorBoard log, the cadence counting from
        `start_step`; start the evaluator process now if the run evaluates while it trains, so that it
        is ready by the first snapshot."""
        self.metrics, self.tb = metrics, tb
        c = self.cfg
        every = c.eval_every_steps
        self.next_step = None if every is None else (start_step // every + 1) * every
        if c.eval_every_steps is not None or c.eval_every_seconds is not None or (
                c.solve_score is not None and c.eval_trigger):
            self.runner.ready()

    # --------------------------------------------------------- snapshots in
    def due(self, step: int, wall: float, window: deque[float]) -> bool:
        """Is a snapshot due now? Every --eval-every-steps steps; --eval-every-seconds after the previous
        evaluation ended; and when the training mean over a full --solve-window reaches --solve-score
        (then not again for a quarter of the step interval, at least 2,500 steps)."""
        c = self.cfg
        if c.eval_every_seconds is not None and self.next_time is None and self.idle():
            self.next_time = wall + c.eval_every_seconds
        scheduled = ((self.next_step is not None and step >= self.next_step)
                     or (self.next_time is not None and wall >= self.next_time))
        triggered = (c.eval_trigger and c.solve_score is not None and step >= self.next_trigger
                     and len(window) == window.maxlen and float(np.mean(window)) >= c.solve_score)
        if not (scheduled or triggered):
            return False
        if c.eval_every_steps is not None:
            self.next_step = (step // c.eval_every_steps + 1) * c.eval_every_steps
        self.next_time = None
        if triggered:
            self.next_trigger = step + max(c.eval_every_steps or 0, 10_000) // 4
        return True

    def submit(self, step: int, wall_s: float, weights: Weights, obs_stats: Moments | None = None) -> None:
        """Evaluate this snapshot (weights and the observation statistics read with them) as soon as
        the evaluator is free; it replaces a waiting older one."""
        self._ids += 1
        if self.pending is not None:
            self._skip(self.pending, f"superseded by the snapshot at step {step:,}")
        self.pending = Request(self._ids, step, wall_s, weights, obs_stats=obs_stats)
        self._dispatch()

    def _dispatch(self) -> None:
        req = self.pending
        if req is None or not self.runner.ready():
            return
        self.pending = None
        if not req.rounds:  # seed rounds are drawn when the snapshot is played (a skipped one uses none)
            c = self.cfg
            stages = 2 if c.solve_score is not None and c.screen_episodes < c.eval_episodes else 1
            req = dataclasses.replace(req, rounds=tuple(range(self.round + 1, self.round + 1 + stages)))
            self.round += stages
        self.held[req.id] = req
        self.runner.start(req)

    def _skip(self, req: Request, reason: str) -> None:
        self.skips += 1
        self.skipped.append({"step": req.step, "snapshot_wall_s": round(req.wall_s, 3), "reason": reason})

    def idle(self) -> bool:
        """Nothing waiting and nothing being played."""
        return self.pending is None and not self.runner.busy()

    # ---------------------------------------------------------- verdicts out
    def poll(self, step: int) -> list[Verdict]:
        """Record the results that arrived; `step` is the run's step now (for the restart log)."""
        msgs, lost = self.runner.receive(step)
        verdicts = []
        for kind, rid, *rest in msgs:
            req = self.held[rid]
            if kind == "idle":
                del self.held[rid]
            else:
                verdicts.append(self._record(req, rest[0]))
        if lost is not None:
            self.held.pop(lost.id, None)
            if self.pending is None:  # evaluate it again (same seeds) on the restarted evaluator
                self.pending = lost
            else:
                self._skip(lost, "the evaluator process died; a newer snapshot is waiting")
        self._dispatch()
        return verdicts

    def _record(self, req: Request, result: EvalResult, force_best: bool = False) -> Verdict:
        c, wall = self.cfg, self.clock()
        self.results += 1
        if result.input_blind and not self._blind_warned:
            self._blind_warned = True
            print(f"asyncdqn: warning: at step {req.step:,} the Q-network gave the same values for every observation "
                  f"of an evaluation: its features are dead (ReLU units that never activate) and it will not learn; "
                  f"start again with a lower --lr (or, with Adam, a larger --adam-eps)", file=sys.stderr)
        if self.metrics is not None:
            self.metrics.evaluation(req.step, wall, result.mean, result.std, result.episodes)
            self.tb.evaluation(req.step, result.mean, result.std)
        full = result.complete and result.episodes >= c.eval_episodes
        if result.episodes:
            self.last = result
        # A full evaluation outranks a short screen or a cut one, whatever their means.
        if force_best or (result.episodes and (
                self.best is None or (full, result.mean) > (self._full(self.best), self._mean(self.best)))):
            d = result.to_dict()
            self.best = {**{k: d[k] for k in ("mean", "std", "episodes", "complete")},
                         **({} if result.complete else {"requested": d["requested"], "cut": d["cut"]}),
                         "step": req.step, "wall_time_s": wall, "snapshot_wall_s": req.wall_s}
            self.save_best(req.weights, req.step, self.best, req.obs_stats)
        solved = full and c.solve_score is not None and result.mean >= c.solve_score
        return Verdict(req.step, req.wall_s, wall, result, full, solved)

    @staticmethod
    def _mean(best: dict[str, Any]) -> float:
        return -math.inf if best["mean"] is None else float(best["mean"])

    def _full(self, best: dict[str, Any]) -> bool:
        return bool(best.get("complete", True)) and best["episodes"] >= self.cfg.eval_episodes

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        """Stop the evaluator; what it had not finished is recorded as skipped."""
        self.runner.close()
        for req in [*self.held.values(), *([self.pending] if self.pending else [])]:
            self._skip(req, "training stopped first")
        self.held, self.pending = {}, None

    def final(self, weights: Weights, step: int, seconds: float, obs_stats: Moments | None = None) -> EvalResult:
        """The final evaluation, in this process, within `seconds`; recorded as the best if nothing else was."""
        self.round += 1
        q = q_of(self.template, weights, obs_stats)
        result = next(play(q, self.cfg, (self.round,), time.monotonic() + seconds))
        if not result.complete:
            print(f"asyncdqn: the final evaluation was cut short ({result.cut}; bound {seconds:g} s): "
                  f"{result.episodes} of {result.requested} episodes finished; eval.json marks it incomplete",
                  file=sys.stderr)
        if self.best is None:  # no evaluation during training: the final weights are the best known
            self._record(Request(0, step, self.clock(), weights, obs_stats=obs_stats), result, force_best=True)
        return result

    def report(self) -> dict[str, Any]:
        """For eval.json: results received, snapshots skipped (the newest 100 listed), evaluator restarts."""
        return {"results": self.results, "skips": self.skips, "skipped": list(self.skipped),
                "restarts": list(self.runner.restarts.log),
                "runner": "in-process" if isinstance(self.runner, InlineRunner) else "process"}
