"""Ray backend: a parameter server actor and actor-learner actors, for a network.

    driver (RayBackend, in the trainer's process)
        | poll: pull counters, episodes, weights, target, optimizer state -> SharedTraining
        v
    ParameterServer actor: owns the Q-network, target network, optimizer state,
        the global step counter and the update version; applies pushed gradients
        one at a time, syncs the target every --target-update-steps, measures staleness
        ^
        | push(gradients, steps, episodes) -> fresh weights       (no barrier between actors)
    RemoteActorLearner actors (one per worker, K environments each): run the very same
        `worker.ActorLearner` against a local copy of the network; its optimizer is a
        proxy that ships the gradient to the parameter server and loads the reply's weights.

Staleness of an update = parameter-server version when it is applied minus the
version of the weights the gradient was computed on (0 = no other update came in
between). An actor-learner that dies (killed process, lost node) is restarted by
Ray up to --max-restarts times, with fresh environment seeds, and training
continues; losing the parameter server stops the run with a TrainingError (the
trainer then keeps the weights last pulled from it in the final checkpoint).

Ray is an optional dependency: it is imported only when this backend starts.
"""

from __future__ import annotations

import socket
import sys
import time
import uuid
from collections import deque
from typing import Any

import numpy as np
import torch

from asyncdqn.algo.optim import SharedAdam, SharedRMSprop
from asyncdqn.backends.base import Backend, ListSink, RestartBudget, SharedTraining
from asyncdqn.config import Config
from asyncdqn.errors import ConfigError, TrainingError
from asyncdqn.learners.async_q import ActorLearner
from asyncdqn.learners.common import EpisodeRecord
from asyncdqn.model import QNetwork

RESTART_SEED_STRIDE = 1_000_003  # a restarted actor-learner's envs use seed + incarnation * stride
PUSH_TIMEOUT_S = 120.0  # an actor-learner waiting longer than this for the server gives up
STATE_TIMEOUT_S = 30.0  # the driver waiting longer than this for the server declares it lost
STOP_WAIT_S = 10.0  # how long stop() lets actor-learners finish their segment
CONNECT_TIMEOUT_S = 5.0  # to reach --ray-address before handing it to Ray
STARTUP_TIMEOUT_S = 180.0  # no env step at all after this long: the actors cannot be scheduled


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("backend: 'ray' needs the Ray package: pip install 'asyncdqn[ray]'") from None
    return ray


def _arrays(model: torch.nn.Module) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.parameters()]


def _load_arrays(model: torch.nn.Module, arrays: list[np.ndarray]) -> None:
    """Copy arrays into the parameters in place (numpy views of them stay valid)."""
    for p, a in zip(model.parameters(), arrays, strict=True):
        np.copyto(p.detach().numpy(), a)


def _network(cfg: Config, obs_dim: int, n_actions: int) -> QNetwork:
    return QNetwork(obs_dim, n_actions, cfg.hidden_sizes)


def _optimizer(cfg: Config, model: torch.nn.Module) -> SharedAdam | SharedRMSprop:
    """The same optimizer (and math) as the local backends, here in one process."""
    if cfg.optimizer == "rmsprop":
        return SharedRMSprop(model.parameters(), lr=cfg.lr, alpha=cfg.rms_alpha, eps=cfg.rms_eps)
    return SharedAdam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)


# --------------------------------------------------------------------------- server
class ParameterServer:
    """Owns the learning state. Ray runs its methods one at a time (no locks needed)."""

    def __init__(self, cfg: Config, obs_dim: int, n_actions: int, init: dict[str, Any]) -> None:
        torch.set_num_threads(1)
        self.cfg = cfg
        self.model = _network(cfg, obs_dim, n_actions)
        self.target = _network(cfg, obs_dim, n_actions)
        _load_arrays(self.model, init["model"])
        _load_arrays(self.target, init["target"])
        self.optimizer = _optimizer(cfg, self.model)
        self.optimizer.load_state_tensors({k: torch.tensor(v) for k, v in init["optim"].items()})
        self.total = int(init["total"])
        self.per_worker = list(init["per_worker"])
        self.version = 0  # number of updates applied by this server
        self.target_version = 0
        self.target_syncs = 0
        self.stop_requested = False
        self.episodes: list[EpisodeRecord] = []
        self.staleness_sum = 0
        self.staleness_max = 0
        self.recent: deque[int] = deque(maxlen=1000)
        self.started_incarnation: dict[int, int] = {}

    def _stop(self) -> bool:
        budget = self.cfg.max_steps is not None and self.total >= self.cfg.max_steps
        return self.stop_requested or budget

    def hello(self, worker: int, incarnation: int) -> dict[str, Any]:
        """An actor-learner (re)starting: current weights and counters."""
        self.started_incarnation[worker] = incarnation
        return {"weights": _arrays(self.model), "version": self.version,
                "target_version": self.target_version, "step": self.total, "stop": self._stop()}

    def push(self, worker: int, grads: list[np.ndarray], based_on: int, steps: int,
             episodes: list[EpisodeRecord], lr: float | None) -> dict[str, Any]:
        """Apply one gradient, count the steps, maybe sync the target; reply with fresh weights."""
        staleness = self.version - based_on
        self.staleness_sum += staleness
        self.staleness_max = max(self.staleness_max, staleness)
        self.recent.append(staleness)
        for p, g in zip(self.model.parameters(), grads, strict=True):
            p.grad = torch.tensor(g)  # a copy: Ray hands over read-only arrays
        t = self.optimizer.step(lr)
        self.optimizer.zero_grad()
        self.version += 1

        old, self.total = self.total, self.total + steps
        if worker < len(self.per_worker):
            self.per_worker[worker] += steps
        n = self.cfg.target_update_steps
        if self.total // n > old // n:  # exactly one sync per multiple crossed, by the owner
            with torch.no_grad():
                for tp, p in zip(self.target.parameters(), self.model.parameters(), strict=True):
                    tp.copy_(p)
            self.target_version += 1
            self.target_syncs += 1
        self.episodes.extend(episodes)
        return {"weights": _arrays(self.model), "version": self.version, "t": t,
                "target_version": self.target_version, "step": self.total, "stop": self._stop()}

    def target_weights(self) -> tuple[int, list[np.ndarray]]:
        return self.target_version, _arrays(self.target)

    def stats(self) -> dict[str, Any]:
        n = self.version
        return {"updates": n, "staleness_mean": self.staleness_sum / n if n else 0.0,
                "staleness_max": self.staleness_max,
                "staleness_recent_mean": float(np.mean(self.recent)) if self.recent else 0.0,
                "target_syncs": self.target_syncs}

    def started(self, worker: int) -> int:
        """The latest incarnation of `worker` that started training (-1: none yet)."""
        return self.started_incarnation.get(worker, -1)

    def state(self) -> dict[str, Any]:
        """Everything the driver mirrors: counters, new episodes, weights, target, optimizer."""
        episodes, self.episodes = self.episodes, []
        return {"total": self.total, "per_worker": list(self.per_worker), "episodes": episodes,
                "model": _arrays(self.model), "target": _arrays(self.target),
                "optim": {k: v.numpy() for k, v in self.optimizer.state_tensors().items()},
                "stats": self.stats()}

    def request_stop(self) -> None:
        self.stop_requested = True

    def ping(self) -> bool:
        return True


# ---------------------------------------------------------------- actor-learner side
class _Link:
    """An actor-learner's view of the server, updated by every reply."""

    def __init__(self, ray: Any, server: Any, worker: int, steps_per_push: int) -> None:
        self.ray, self.server, self.worker = ray, server, worker
        self.steps_per_push = steps_per_push
        self.version = 0
        self.target_version = 0
        self.step = 0
        self.stop = False
        self.model: torch.nn.Module | None = None
        self.sink = ListSink()

    def call(self, ref: Any) -> Any:
        return self.ray.get(ref, timeout=PUSH_TIMEOUT_S)

    def apply(self, reply: dict[str, Any]) -> None:
        assert self.model is not None
        _load_arrays(self.model, reply["weights"])
        self.version = int(reply["version"])
        self.target_version = int(reply["target_version"])
        self.step = int(reply["step"])
        self.stop = bool(reply["stop"])


class _PushOptimizer:
    """`step()` ships the local gradient (and the segment's steps and episodes) to the server.

    Synchronous: wait for the reply (fresh weights) before the next segment. Pipelined:
    keep this push in flight and load the *previous* push's reply, so the next segment's
    env steps overlap the round trip (Ray runs one caller's calls to an actor in order).
    """

    def __init__(self, link: _Link, model: torch.nn.Module, pipeline: bool) -> None:
        self.link, self.model, self.pipeline = link, model, pipeline
        self.pending: Any = None
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.model.parameters():
            p.grad = None

    def step(self, lr: float | None = None) -> int:
        grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).detach().numpy().copy()
                 for p in self.model.parameters()]
        link = self.link
        ref = link.server.push.remote(link.worker, grads, link.version, link.steps_per_push, link.sink.drain(), lr)
        if self.pipeline:
            ref, self.pending = self.pending, ref
        if ref is not None:
            self._receive(ref)
        return self.t

    def _receive(self, ref: Any) -> None:
        reply = self.link.call(ref)
        self.link.apply(reply)
        self.t = int(reply["t"])

    def flush(self) -> None:
        """Wait for the push still in flight (its steps and episodes are then counted)."""
        if self.pending is not None:
            ref, self.pending = self.pending, None
            self._receive(ref)


class _ServerCounter:
    """The global step as last reported by the server; steps travel with each push."""

    def __init__(self, link: _Link) -> None:
        self.link = link

    @property
    def value(self) -> int:
        return self.link.step

    def add(self, worker: int, n: int) -> tuple[int, int]:
        return self.link.step - n, self.link.step  # already added by the server at the push


class _ServerTarget:
    """The server's target network; the server alone syncs it (sync_from is a no-op here)."""

    def __init__(self, link: _Link) -> None:
        self.link = link

    @property
    def version(self) -> int:
        return self.link.target_version

    def read_into(self, arrays: list[np.ndarray]) -> int:
        version, weights = self.link.call(self.link.server.target_weights.remote())
        for dst, src in zip(arrays, weights, strict=True):
            np.copyto(dst, src)
        return int(version)

    def sync_from(self, model: torch.nn.Module, step: int) -> None:
        pass


class RemoteActorLearner:
    """A Ray actor running one `ActorLearner` until the server says stop."""

    def __init__(self, cfg: Config, index: int, obs_dim: int, n_actions: int, server_name: str) -> None:
        # The server is found by name (not passed as a handle) so that Ray can
        # restart this actor from its plain constructor arguments alone.
        torch.set_num_threads(1)
        self.cfg, self.index, self.server_name = cfg, index, server_name
        self.obs_dim, self.n_actions = obs_dim, n_actions

    def run(self, incarnation: int) -> int:
        """Train until stop or the step budget; returns this incarnation's env steps."""
        import ray

        cfg = self.cfg
        self.server = ray.get_actor(self.server_name)
        if incarnation > 0:  # a restarted actor-learner must not replay the same episodes
            cfg = cfg.replace(seed=cfg.seed + incarnation * RESTART_SEED_STRIDE)
        link = _Link(ray, self.server, self.index, cfg.t_max * cfg.envs_per_worker)
        model = _network(cfg, self.obs_dim, self.n_actions)
        link.model = model
        link.apply(link.call(self.server.hello.remote(self.index, incarnation)))
        optimizer = _PushOptimizer(link, model, cfg.ray_pipeline)
        worker = ActorLearner(cfg, self.index, model, optimizer, _ServerTarget(link), _ServerCounter(link), link.sink)
        try:
            while not link.stop:
                if cfg.max_steps is not None and link.step >= cfg.max_steps:
                    break
                worker.run_segment()
            optimizer.flush()
        finally:
            worker.close()
        return worker.steps_done


# --------------------------------------------------------------------------- driver
def _first_line(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _check_reachable(address: str | None) -> None:
    """Fail fast on an unreachable HOST:PORT (Ray itself retries for minutes)."""
    if address is None or address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"ray_address: expected auto or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(f"ray_address: cannot reach Ray at {address}: {exc}") from None


class RayBackend(Backend):
    """The trainer's side: starts the actors, mirrors the server into SharedTraining."""

    def __init__(self, cfg: Config, shared: SharedTraining) -> None:
        self.cfg, self.shared = cfg, shared
        self.n = cfg.resolved_workers()
        self.ray: Any = None
        self.server: Any = None
        self.actors: list[Any] = []
        self.runs: dict[int, Any] = {}  # worker -> ObjectRef of its running `run` task
        self.restart_counts = [0] * self.n  # per actor-learner (recorded in eval.json by the ray branch)
        self.restarts = RestartBudget(cfg.max_restarts)
        self.incarnation = [0] * self.n  # of the `run` task last sent to each worker
        self.done: set[int] = set()
        self.last_stats: dict[str, Any] = {}
        self._owns_ray = False
        self._stopped = False
        self._t_start = 0.0
        self._step0: int | None = None

    # ------------------------------------------------------------------ start
    def _init_ray(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        _check_reachable(self.cfg.ray_address)
        try:
            if self.cfg.ray_address is not None:
                ray.init(address=self.cfg.ray_address, log_to_driver=False, logging_level="WARNING")
            else:
                ray.init(num_cpus=self.n, include_dashboard=False, _node_ip_address="127.0.0.1",
                         log_to_driver=False, logging_level="WARNING")
        except ConnectionError as exc:
            raise ConfigError(f"ray_address: cannot connect to Ray at {self.cfg.ray_address!r}: {exc}") from None
        self._owns_ray = True

    def start(self) -> None:
        self.ray = ray = import_ray()
        self._init_ray()
        s = self.shared
        model = s.model
        obs_dim, n_actions = int(model.obs_dim), int(model.n_actions)  # type: ignore[union-attr]
        init = {"model": _arrays(model), "target": _arrays(s.target.model),
                "optim": {k: v.numpy() for k, v in s.optimizer.state_tensors().items()},
                "total": s.counter.value, "per_worker": s.counter.per_worker()}
        name = f"asyncdqn-ps-{uuid.uuid4().hex[:12]}"
        server_cls = ray.remote(num_cpus=0, max_restarts=0)(ParameterServer)
        self.server = server_cls.options(name=name).remote(self.cfg, obs_dim, n_actions, init)
        actor_cls = ray.remote(num_cpus=1, max_restarts=self.cfg.max_restarts, max_task_retries=0)(
            RemoteActorLearner)
        self.actors = [actor_cls.remote(self.cfg, i, obs_dim, n_actions, name) for i in range(self.n)]
        self.runs = {i: a.run.remote(0) for i, a in enumerate(self.actors)}
        self._t_start, self._step0 = time.monotonic(), s.counter.value

    # ------------------------------------------------------------------- poll
    def _server_lost(self, exc: BaseException) -> TrainingError:
        return TrainingError(f"parameter server lost ({type(exc).__name__}); "
                             "the last checkpoint and the last weights pulled from it are kept")

    def _check_server(self) -> None:
        try:
            self.ray.get(self.server.ping.remote(), timeout=STATE_TIMEOUT_S)
        except Exception as exc:
            raise self._server_lost(exc) from None

    def _collect(self, ref: Any) -> None:
        """One `run` task ended: normal end, actor death (restart) or a failure."""
        ex = self.ray.exceptions
        i = next(k for k, r in self.runs.items() if r == ref)
        try:
            self.ray.get(ref)
            self.done.add(i)
            del self.runs[i]
            return
        except ex.RayActorError as exc:
            self._check_server()
            if isinstance(exc, ex.ActorDiedError):  # Ray gave up on it (restarts exhausted)
                raise TrainingError(f"worker {i} died and Ray did not restart it "
                                    f"(--max-restarts {self.cfg.max_restarts}): {_first_line(exc)}") from None
            # ActorUnavailableError: the actor died and is being restarted by Ray. Count a
            # restart only if the failed task had started (said hello to the server); a task
            # sent while the actor was still restarting fails the same way and is just re-sent.
            started = self.ray.get(self.server.started.remote(i), timeout=STATE_TIMEOUT_S)
            if started >= self.incarnation[i]:
                self.restart_counts[i] += 1
                self.incarnation[i] += 1
                if self.restart_counts[i] > self.cfg.max_restarts:
                    raise TrainingError(f"worker {i} died {self.restart_counts[i]} times (more than "
                                        f"--max-restarts {self.cfg.max_restarts})") from None
                print(f"asyncdqn: ray: worker {i} died, restart {self.restart_counts[i]}/{self.cfg.max_restarts}",
                      file=sys.stderr)
            self.runs[i] = self.actors[i].run.remote(self.incarnation[i])
        except ex.RayTaskError as exc:
            self._check_server()
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            raise TrainingError(f"worker {i} failed: {type(cause).__name__}: {cause}") from None

    def _pull(self) -> list[EpisodeRecord]:
        """Mirror the server's state into the trainer's SharedTraining; returns new episodes."""
        try:
            st = self.ray.get(self.server.state.remote(), timeout=STATE_TIMEOUT_S)
        except Exception as exc:
            raise self._server_lost(exc) from None
        s = self.shared
        _load_arrays(s.model, st["model"])
        _load_arrays(s.target.model, st["target"])
        s.optimizer.load_state_tensors({k: torch.tensor(v) for k, v in st["optim"].items()})
        s.counter.restore(st["total"], st["per_worker"])
        self.last_stats = {**st["stats"], "restarts": sum(self.restart_counts)}
        return list(st["episodes"])

    def poll(self, timeout: float) -> list[EpisodeRecord]:
        if self.runs:
            ready, _ = self.ray.wait(list(self.runs.values()), num_returns=1, timeout=timeout)
            for ref in ready:
                self._collect(ref)
        episodes = self._pull()
        if self._step0 is not None:
            if self.shared.counter.value > self._step0:
                self._step0 = None  # training has started
            elif time.monotonic() - self._t_start > STARTUP_TIMEOUT_S:
                raise TrainingError(f"no actor-learner started within {STARTUP_TIMEOUT_S:.0f} s: does the "
                                    f"cluster have {self.n} free CPUs for --workers {self.n}? (see `ray status`)")
        return episodes

    def finished(self) -> bool:
        return len(self.done) == self.n

    def stats(self) -> dict[str, Any]:
        """Updates applied, staleness (mean, max, recent mean), target syncs, restarts."""
        return dict(self.last_stats)

    # ------------------------------------------------------------------- stop
    def stop(self) -> None:
        if self._stopped or self.ray is None:
            self._stopped = True
            return
        self._stopped = True
        ray = self.ray
        try:
            if self.server is not None:
                self.server.request_stop.remote()
                if self.runs:
                    ray.wait(list(self.runs.values()), num_returns=len(self.runs), timeout=STOP_WAIT_S)
                self._pull()  # the final state, for the final checkpoint
        except Exception as exc:  # the server is gone: keep what was pulled last
            print(f"asyncdqn: ray: final state not pulled: {exc}", file=sys.stderr)
        finally:
            for a in self.actors:
                try:
                    ray.kill(a, no_restart=True)
                except Exception:
                    pass
            if self.server is not None:
                try:
                    ray.kill(self.server, no_restart=True)
                except Exception:
                    pass
            if self._owns_ray:
                ray.shutdown()
        st = self.last_stats
        if st:
            print(f"asyncdqn: ray: {st['updates']} updates, staleness mean {st['staleness_mean']:.2f} "
                  f"max {st['staleness_max']}, {st['target_syncs']} target syncs, "
                  f"{st['restarts']} actor-learner restarts", file=sys.stderr)
