"""Ray backend: a Hogwild group of process workers on each Ray node, and one parameter server.

    driver (RayBackend, in the trainer's process)
        | poll: pull counters, episodes, restarts, master weights (target, optimizer
        v       state when they changed) -> the trainer's SharedTraining
    ParameterServer actor (ray_server.py): master weights, target network, global step
        count; decides target syncs and the stop
        ^
        | exchange every --ray-sync-seconds (and at target-sync multiples):
        | weight delta + steps + episodes up, master (+ target) down
    node groups (ray_group.py, GroupRunner), one per node: the process backend, unchanged,
        running that node's share of --workers as Hogwild processes in shared memory;
        on the driver's node in the driver itself (LocalGroup: a thread, its workers the
        driver's children), on every other node in a NodeGroup actor

On one node this is the process backend plus one exchange every --ray-sync-seconds;
on N nodes the groups learn in parallel and mix through the server. `--workers` is
the number of worker processes in the whole cluster; they are spread over the alive
nodes in order (the driver's node first), each node taking as many as it has CPUs.

Start-up: the driver's group is started before `ray.init` (a private local Ray: it has
every worker; a Ray already initialised by the caller: its plan is known), so its workers
learn while Ray, the server and the other groups come up. Until the server answers its
hello it is the whole run ("solo"): its workers sync the target themselves and the
trainer mirrors the group directly; its first exchange hands all of that to the server.
A private local Ray is started in a background thread once the group's workers are ready
(the trainer's loop does not wait for it). With --ray-address every group is an actor,
the driver's node's too (Ray then accounts for every group's CPUs on a shared cluster).

Faults: a worker process that dies is restarted inside its group; a group actor that
dies (killed, node lost) is restarted by Ray from the server's state. Both count
against one budget, --max-restarts for the whole run, recorded in eval.json
(`worker_restarts`). Losing the parameter server stops the run with a TrainingError;
the trainer keeps the weights last pulled from it in the final checkpoint and every
earlier checkpoint untouched.

Ray is an optional dependency: it is imported only when this backend starts.
"""

from __future__ import annotations

import importlib.util
import logging
import queue
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from asyncdqn.backends.base import Backend, RestartBudget, SharedTraining
from asyncdqn.backends.ray_group import CALL_TIMEOUT_S, POLL_S, GroupRunner, NodeGroup, build_group_state
from asyncdqn.backends.ray_server import ParameterServer, ServerInit, flatten, fresh_hello, unflatten
from asyncdqn.config import Config
from asyncdqn.errors import ConfigError, TrainingError
from asyncdqn.learners.common import EpisodeRecord
from asyncdqn.model import QNetwork

STATE_TIMEOUT_S = 30.0  # a single call to the server (ping, started) waiting longer than this: lost
STATE_WAIT_S = 2.0  # one poll waits this long for the server's state, then returns (and waits again next poll)
LOST_AFTER_S = 120.0  # no state from a live but silent server for this long: lost (an overloaded machine is slow)
STOP_WAIT_S = 10.0  # how long stop() lets groups finish and send their last exchange
CONNECT_TIMEOUT_S = 5.0  # to reach --ray-address before handing it to Ray
STARTUP_TIMEOUT_S = 180.0  # no env step at all after this long: the groups cannot be scheduled
LOCAL_READY_WAIT_S = 10.0  # a private local Ray starts once the driver's workers are ready, or after this long


MISSING_RAY = "backend: 'ray' needs the Ray package: pip install 'asyncdqn[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(MISSING_RAY) from None
    return ray


def _ray_initialized() -> bool:
    """Whether this process is connected to a Ray, without importing Ray (≈ 0.5 s) if it is not."""
    ray = sys.modules.get("ray")
    return ray is not None and bool(ray.is_initialized())


@dataclass(frozen=True)
class GroupPlan:
    group: int
    node_id: str
    first: int  # first worker index
    count: int

    @property
    def workers(self) -> range:
        return range(self.first, self.first + self.count)


def plan_groups(nodes: list[tuple[str, int]], workers: int) -> list[GroupPlan]:
    """Spread `workers` over `nodes` ((node id, CPUs), in order): each node takes up to its CPUs."""
    plans: list[GroupPlan] = []
    left = workers
    for node_id, cpus in nodes:
        take = min(int(cpus), left)
        if take > 0:
            plans.append(GroupPlan(len(plans), node_id, workers - left, take))
            left -= take
    if left > 0:
        have = sum(int(c) for _, c in nodes)
        raise ConfigError(f"workers: --workers {workers} needs {workers} CPUs; the Ray cluster has {have} "
                          f"on {len(nodes)} node(s) (see `ray status`)")
    return plans


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


def _params(model: torch.nn.Module) -> list[np.ndarray]:
    return [p.detach().numpy() for p in model.parameters()]


class _DropRayWarning(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


class LocalGroup:
    """The driver's node group, run by a thread of the driver (the trainer's process).

    Its worker processes are children of the driver, started before `ray.init`, so they learn
    while Ray, the parameter server and the other nodes' group actors come up. Until the
    server answers the group's hello the group is the whole run: its workers sync the target
    themselves (solo, see GroupTarget) and its weight delta grows against the initial weights
    (the state a fresh server starts from); its first exchange carries all of it.

    A thread, not the trainer's poll, steps it: the trainer's loop stops for seconds during
    each greedy evaluation or checkpoint, and the exchanges (the target syncs above all) must
    not wait for it. The thread only touches the runner; the driver drains `episodes`, reads
    the runner's restart log, and sees the thread end (`alive`, `error`).
    """

    def __init__(self, cfg: Config, plan: GroupPlan, init: ServerInit, obs_dim: int, n_actions: int,
                 alone: bool) -> None:
        """`alone`: no other group in the run; then, done before the server is up, the group does
        not wait for it (its solo state, mirrored by the trainer, is the whole run's)."""
        self.plan, self.alone = plan, alone
        hello = fresh_hello(cfg, init, plan.group, plan.first, plan.count)
        shared = build_group_state(cfg, obs_dim, n_actions, hello, solo=True)
        self.runner = GroupRunner(cfg, plan.group, 0, plan.workers, shared, hello, relay=False)
        self.episodes: queue.SimpleQueue[EpisodeRecord] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.restarts_seen = 0  # entries of the runner's restart log charged to the run's budget
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="asyncdqn-local-group", daemon=True)

    def start(self) -> None:
        # The workers are spawned here, by the driver's main thread: PR_SET_PDEATHSIG ties them to the
        # thread that spawned them. (Restarted ones are spawned by the group's thread, which stops
        # every worker before it ends.)
        self.runner.start()
        self._thread.start()

    def connect(self, server: Any) -> None:
        """The server exists: say hello (the thread exchanges once it is answered)."""
        self.runner.connect(server, registered=False)

    def _run(self) -> None:
        r = self.runner
        r.link.cpu_clock = time.thread_time  # this thread's CPU, not the trainer's
        r.link.cpu0 = time.thread_time()
        try:
            while not self._stop.is_set() and not (r.done and (r.registered or self.alone)):
                for ep in r.step(POLL_S):
                    self.episodes.put(ep)
            timeout = STOP_WAIT_S if self._stop.is_set() else CALL_TIMEOUT_S
            r.finish(timeout, hello_timeout=0.0 if self.alone else timeout)
        except BaseException as exc:  # handed to the driver's next poll
            self.error = exc
        finally:
            try:
                r.close()
            except Exception as exc:
                self.error = self.error or exc

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def drain(self) -> list[EpisodeRecord]:
        out: list[EpisodeRecord] = []
        while True:
            try:
                out.append(self.episodes.get_nowait())
            except queue.Empty:
                return out

    def stop(self, timeout: float) -> None:
        """Stop the workers and send the final exchange (if the server is up), within about `timeout` s."""
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            print("asyncdqn: ray: the driver's node group did not stop in time", file=sys.stderr)
        else:
            self.runner.close()


class RayBackend(Backend):
    """The trainer's side: places the server and the groups, mirrors the server into SharedTraining."""

    def __init__(self, cfg: Config, shared: SharedTraining) -> None:
        self.cfg, self.shared = cfg, shared
        self.n = cfg.resolved_workers()
        self.ray: Any = None
        self.server: Any = None
        self.plans: list[GroupPlan] = []
        self.groups: list[Any] = []  # actor handles, by group (None: the driver's own group)
        self.local: LocalGroup | None = None  # the driver's node group, run in this process
        self.runs: dict[int, Any] = {}  # group -> ObjectRef of its running `run` task
        self.incarnation: list[int] = []  # of the `run` task last sent to each group
        self.restarts = RestartBudget(cfg.max_restarts)
        self.done: set[int] = set()
        self.last_stats: dict[str, Any] = {}
        self._target_version = -1
        self._optim_version = -1
        self._owns_ray = False
        self._stopped = False
        self._t_start = 0.0
        self._step0: int | None = None
        self._state_ref: Any = None  # a state() call in flight
        self._last_state = 0.0
        self._server_up = False  # the server has answered a state() call
        self._bringup: threading.Thread | None = None  # brings a private local Ray up (see start)
        self._bringup_error: BaseException | None = None
        self._up = threading.Event()  # set once the bring-up is over (done or failed)
        self._up_seen = False  # ... and poll has taken note (raised its error, if any)
        self._release = threading.Event()  # set by stop() once Ray is shut down: the bring-up thread ends
        self._abort = threading.Event()  # set by stop(): a bring-up that has not called ray.init yet does not
        self._solo_total = -1  # the count last mirrored from the driver's group while it was solo
        self._solo_target = -1  # the version of its target last mirrored

    # ------------------------------------------------------------------ start
    def _init_ray(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        _check_reachable(self.cfg.ray_address)
        main = threading.current_thread() is threading.main_thread()
        sigterm = signal.getsignal(signal.SIGTERM) if main else None
        quiet = _DropRayWarning("SIGTERM handler is not set")  # Ray's note when started from a thread
        logging.getLogger("ray._private.worker").addFilter(quiet)
        try:
            if self.cfg.ray_address is not None:
                ray.init(address=self.cfg.ray_address, log_to_driver=False, logging_level="WARNING")
            else:
                # address="local": a private Ray, never a cluster someone started on this machine. Its
                # one node is the driver's, whose group runs in the driver: Ray needs no CPUs of its own
                # (the parameter server takes none), and with none it starts no idle worker processes
                # that would compete with the workers for the cores while everything comes up.
                cpus = 0 if self.local is not None else self.n
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                         log_to_driver=False, logging_level="WARNING")
        except ConnectionError as exc:
            raise ConfigError(f"ray_address: cannot connect to Ray at {self.cfg.ray_address!r}: {exc}") from None
        finally:
            logging.getLogger("ray._private.worker").removeFilter(quiet)
            if main and sigterm is not None:  # ray.init sets its own (sys.exit): the trainer's stays
                signal.signal(signal.SIGTERM, sigterm)
        self._owns_ray = True

    def _nodes(self) -> list[tuple[str, int]]:
        """Alive nodes with CPUs, the driver's node first."""
        here = self.ray.get_runtime_context().get_node_id()
        nodes = [(n["NodeID"], int(n.get("Resources", {}).get("CPU", 0))) for n in self.ray.nodes() if n["Alive"]]
        nodes = [n for n in nodes if n[1] > 0]
        return sorted(nodes, key=lambda n: n[0] != here)

    def start(self) -> None:
        s = self.shared
        model = s.model
        if not isinstance(model, QNetwork):
            raise TypeError(f"the ray backend trains a QNetwork, got {type(model).__name__}")
        obs_dim, n_actions = model.obs_dim, model.n_actions
        init = ServerInit(weights=flatten(_params(model)), target=flatten(_params(s.target.model)),
                          target_syncs=s.target.syncs, last_sync_step=s.target.last_sync_step,
                          optim={k: v.numpy() for k, v in s.optimizer.state_tensors().items()},
                          total=s.counter.value, per_worker=s.counter.per_worker())
        self._t_start, self._step0 = time.monotonic(), s.counter.value
        # The driver's node runs its group itself (LocalGroup), started before ray.init when its
        # share of the workers is known by then: a private local Ray has one node, the driver's,
        # so every worker is here; a Ray the caller has already connected to shows its nodes. With
        # --ray-address, ray.init comes first and every group is an actor, as on the other nodes
        # (Ray then holds the CPUs of every group, the driver's node's included).
        if self.cfg.ray_address is None and not _ray_initialized():
            # A private local Ray: the driver's group is the whole run and needs no Ray to learn, be
            # evaluated or checkpointed (solo, mirrored by the trainer). So Ray is imported, started,
            # and given its server in the background, once the group's workers are up.
            if importlib.util.find_spec("ray") is None:
                raise ConfigError(MISSING_RAY)
            self.local = LocalGroup(self.cfg, GroupPlan(0, "", 0, self.n), init, obs_dim, n_actions, alone=True)
            self.local.start()
            self._bringup = threading.Thread(target=self._bring_up_in_thread, args=(init, obs_dim, n_actions),
                                             name="asyncdqn-ray-start", daemon=True)
            self._bringup.start()
            return
        self.ray = ray = import_ray()
        if ray.is_initialized():
            self.plans = plan_groups(self._nodes(), self.n)
            here = ray.get_runtime_context().get_node_id()
            local_plan = next((p for p in self.plans if p.node_id == here), None)
            if self.cfg.ray_address is None and local_plan is not None:
                self.local = LocalGroup(self.cfg, local_plan, init, obs_dim, n_actions, alone=len(self.plans) == 1)
                self.local.start()
        self._bring_up(init, obs_dim, n_actions)

    def _bring_up_in_thread(self, init: ServerInit, obs_dim: int, n_actions: int) -> None:
        try:
            self._wait_local_ready(min(self.cfg.start_timeout, LOCAL_READY_WAIT_S))
            if not self._abort.is_set():  # a run stopped this early never starts Ray at all
                self.ray = import_ray()
                self._bring_up(init, obs_dim, n_actions)
        except BaseException as exc:  # raised by the next poll
            self._bringup_error = exc
        finally:
            self._up.set()
        # Ray's own processes (GCS, raylet, agents) were started by this thread with PR_SET_PDEATHSIG:
        # they would die with it. So it lives on until stop() has shut Ray down.
        self._release.wait()

    def _wait_local_ready(self, limit_s: float) -> None:
        """Until the driver's group's workers are ready (spawned, imports done, environments built):
        Ray's start-up (3-4 CPU-seconds of its processes) would otherwise slow theirs."""
        assert self.local is not None
        end = time.monotonic() + limit_s
        while time.monotonic() < end and not self._abort.is_set() and self.local.alive:
            if all(slot.ready or slot.done for slot in self.local.runner.backend.slots):
                return
            time.sleep(0.02)

    def _bring_up(self, init: ServerInit, obs_dim: int, n_actions: int) -> None:
        """ray.init, the plan, the parameter server (the driver's group says hello), the group actors."""
        ray = self.ray
        self._init_ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = ray.get_runtime_context().get_node_id()
        if not self.plans:
            if self.local is not None:
                self.local.plan = replace(self.local.plan, node_id=here)
                self.plans = [self.local.plan]
            else:
                self.plans = plan_groups(self._nodes(), self.n)
        name = f"asyncdqn-ps-{uuid.uuid4().hex[:12]}"
        server_cls = ray.remote(num_cpus=0, max_restarts=0)(ParameterServer)
        self.server = server_cls.options(
            name=name, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True)).remote(self.cfg, init)
        if self.local is not None:
            self.local.connect(self.server)
        group_cls = ray.remote(max_restarts=self.cfg.max_restarts, max_task_retries=0)(NodeGroup)
        local_group = None if self.local is None else self.local.plan.group
        self.groups = [
            None if p.group == local_group else
            group_cls.options(num_cpus=p.count, name=f"{name}-group-{p.group}",
                              scheduling_strategy=NodeAffinitySchedulingStrategy(p.node_id, soft=True))
            .remote(self.cfg, p.group, p.first, p.count, obs_dim, n_actions, name)
            for p in self.plans]
        self.incarnation = [0] * len(self.plans)
        self.runs = {g: a.run.remote(0) for g, a in enumerate(self.groups) if a is not None}
        # Nothing waits for the server here: the driver's group learns on, and the first poll
        # that gets the server's state starts the clock of STARTUP_TIMEOUT_S for the groups.
        self._t_start = self._last_state = time.monotonic()

    @property
    def procs(self) -> list[Any]:
        """The worker processes of the driver's node group (children of this process)."""
        return [] if self.local is None else self.local.runner.backend.procs

    # ------------------------------------------------------------------- poll
    def _server_lost(self, exc: BaseException) -> TrainingError:
        return TrainingError(f"parameter server lost ({type(exc).__name__}: {_first_line(exc, 120)}); "
                             "the last checkpoint and the last weights pulled from it are kept")

    def _check_server(self) -> None:
        try:
            self.ray.get(self.server.ping.remote(), timeout=STATE_TIMEOUT_S)
        except Exception as exc:
            raise self._server_lost(exc) from None

    def _describe(self, g: int) -> str:
        p = self.local.plan if self.local is not None and g == self.local.plan.group else self.plans[g]
        return f"node group {g} (workers {p.first}-{p.first + p.count - 1})"

    def _collect(self, ref: Any) -> None:
        """One group's `run` task ended: normal end, group death (restart) or a failure."""
        ex = self.ray.exceptions
        g = next(k for k, r in self.runs.items() if r == ref)
        try:
            self.ray.get(ref)
            self.done.add(g)
            del self.runs[g]
            return
        except ex.RayActorError as exc:
            self._check_server()
            if isinstance(exc, ex.ActorDiedError):  # Ray gave up on it (ActorUnavailableError: restarting)
                raise TrainingError(f"{self._describe(g)} died and Ray did not restart it "
                                    f"(--max-restarts {self.cfg.max_restarts}): {_first_line(exc)}") from None
            # The group's process died and Ray is restarting it. Count a restart only if the
            # failed task had started (said hello to the server); a task sent while the actor
            # was still restarting fails the same way and is just sent again.
            started = self.ray.get(self.server.started.remote(g), timeout=STATE_TIMEOUT_S)
            if started >= self.incarnation[g]:
                self.restarts.charge(self.plans[g].first, f"the group's process died ({type(exc).__name__})",
                                     self.shared.counter.value, what=self._describe(g))
                self.incarnation[g] += 1
            self.runs[g] = self.groups[g].run.remote(self.incarnation[g])
        except ex.RayTaskError as exc:
            self._check_server()
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, TrainingError):  # non-finite values, workers not starting, out of restarts
                raise type(cause)(str(cause)) from None  # the same kind (DivergedError, StartTimeoutError...)
            raise TrainingError(f"{self._describe(g)} failed: {type(cause).__name__}: {cause}") from None

    def _drain_local(self) -> list[EpisodeRecord]:
        """The driver's group: its new episodes, its worker restarts (charged to the run's budget),
        its end (done, or its failure raised here)."""
        lg = self.local
        if lg is None or lg.plan.group in self.done:
            return []
        alive = lg.alive  # before draining: whatever it put before ending is drained below
        out = lg.drain()
        log = lg.runner.backend.restarts.log
        while lg.restarts_seen < len(log):
            r = log[lg.restarts_seen]
            lg.restarts_seen += 1
            self.restarts.charge(int(r["worker"]), str(r["reason"]), int(r["step"]), quiet=True)  # logged already
        if not alive:
            if lg.error is not None:
                self._local_failed(lg.plan.group, lg.error)
            self.done.add(lg.plan.group)
        return out

    def _solo(self) -> bool:
        """The driver's group is the whole run so far: its first exchange has not reached the server."""
        return self.local is not None and self.local.runner.exchanges == 0

    def _mirror_local(self) -> None:
        """While the driver's group is solo, the trainer mirrors it (not the server, which has nothing
        yet): its weights, target, counts and optimizer state are the run's, exactly."""
        assert self.local is not None
        g, s = self.local.runner.shared, self.shared
        for dst, src in zip(_params(s.model), _params(g.model), strict=True):
            np.copyto(dst, src)
        if g.target.version != self._solo_target:
            arrays = [np.empty_like(a) for a in _params(g.target.model)]
            self._solo_target = g.target.read_into(arrays)
            s.target.load(arrays, g.target.syncs, g.target.last_sync_step)
        s.optimizer.load_state_tensors(g.optimizer.state_tensors())
        self._solo_total = g.counter.value
        s.counter.restore(self._solo_total, g.counter.per_worker())
        if not self._server_up:  # the server's figures, as they stand: nothing exchanged yet
            self.last_stats = self._with_plans({
                "groups": 1, "exchanges": 0, "exchanges_per_group": {}, "bytes_in": 0, "bytes_out": 0,
                "bytes_per_exchange": 0.0, "target_syncs": s.target.syncs, "server_cpu_s": 0.0, "group_cpu_s": {},
                "optimizer_updates": g.optimizer.step_count - self.local.runner.link.optim_t0})

    def _with_plans(self, stats: dict[str, Any]) -> dict[str, Any]:
        local = None if self.local is None else self.local.plan.group
        return {**stats, "restarts": len(self.restarts.log),
                "groups_planned": [{"node": p.node_id[:12], "workers": p.count, "in_driver": p.group == local}
                                   for p in self.plans]}

    def _stop_local_only(self) -> None:
        if self.local is not None:
            self.local.stop(3 * STOP_WAIT_S)
            if self._solo():
                self._mirror_local()

    def _local_failed(self, g: int, exc: BaseException) -> None:
        if isinstance(exc, TrainingError):  # non-finite values, workers not starting, out of restarts
            raise type(exc)(str(exc)) from None
        if self.ray is not None and isinstance(exc, self.ray.exceptions.RayError):  # its exchange failed
            self._check_server()
        raise TrainingError(f"{self._describe(g)} (in the driver) failed: "
                            f"{type(exc).__name__}: {_first_line(exc)}") from None

    def _pull(self, wait_s: float = STATE_WAIT_S) -> list[EpisodeRecord]:
        """Mirror the server's state into the trainer's SharedTraining; returns new episodes.

        A slow answer (an overloaded machine) is waited for across polls, never asked twice
        (the server hands out each episode once); silence for LOST_AFTER_S, or a dead server, is fatal."""
        if self._state_ref is None:
            self._state_ref = self.server.state.remote(self._target_version, self._optim_version)
        ready, _ = self.ray.wait([self._state_ref], timeout=wait_s)
        if not ready:
            waited = time.monotonic() - self._last_state
            if not self._server_up and waited > STARTUP_TIMEOUT_S:
                raise TrainingError(f"the parameter server did not start within {STARTUP_TIMEOUT_S:.0f} s")
            if self._server_up and waited > LOST_AFTER_S:
                raise self._server_lost(TimeoutError(f"no answer for {LOST_AFTER_S:.0f} s"))
            return []
        ref, self._state_ref = self._state_ref, None
        try:
            st = self.ray.get(ref)
        except Exception as exc:
            if not self._server_up:
                raise TrainingError(f"the parameter server did not start ({type(exc).__name__}: "
                                    f"{_first_line(exc, 200)})") from None
            raise self._server_lost(exc) from None
        self._last_state = time.monotonic()
        if not self._server_up:  # the groups' start-up clock runs from here
            self._server_up, self._t_start = True, self._last_state
        s = self.shared
        # Not before the driver's group's first exchange has reached the server: until then the
        # trainer mirrors that group itself (_mirror_local), and the server is behind it.
        if not self._solo() and int(st["total"]) >= self._solo_total:
            shapes = [tuple(p.shape) for p in s.model.parameters()]
            for view, a in zip(_params(s.model), unflatten(st["weights"], shapes), strict=True):
                np.copyto(view, a)
            if "target" in st:
                s.target.load(unflatten(st["target"], shapes), int(st["target_syncs"]), int(st["last_sync_step"]))
            self._target_version = int(st["target_version"])
            if "optim" in st:
                s.optimizer.load_state_tensors({k: torch.from_numpy(np.array(v)) for k, v in st["optim"].items()})
            self._optim_version = int(st["optim_version"])
            s.counter.restore(st["total"], st["per_worker"])
        for r in st["restarts"]:  # worker processes restarted inside a group: the run's one budget
            self.restarts.charge(int(r["worker"]), str(r["reason"]), int(r["step"]))
        if not self._solo():
            self.last_stats = self._with_plans(st["stats"])
        return list(st["episodes"])

    def _bringing_up(self) -> bool:
        """True while a private local Ray is still coming up (in its thread); raises what it raised."""
        if self._bringup is None or self._up_seen:
            return False
        if not self._up.is_set():
            return True
        self._up_seen = True
        if self._bringup_error is not None:
            raise self._bringup_error
        return False

    def poll(self, timeout: float) -> list[EpisodeRecord]:
        # Each poll waits `timeout` (a group actor ending cuts it short), then takes what came: the
        # trainer's loop runs a few times a second, not once per episode of the driver's group.
        if self._bringing_up():  # the driver's group alone, solo: no Ray to ask yet
            time.sleep(timeout)
            episodes = self._drain_local()
            if self._solo():
                self._mirror_local()
            return episodes
        if self.runs:
            ready, _ = self.ray.wait(list(self.runs.values()), num_returns=1, timeout=timeout)
            for ref in ready:
                self._collect(ref)
        else:
            time.sleep(timeout)
        episodes = self._drain_local()
        if self._solo():
            self._mirror_local()
        # Until the server is up, do not wait for it: the driver's group's episodes go on arriving.
        episodes += self._pull(STATE_WAIT_S if self._server_up else 0.0)
        if self._step0 is not None:
            if self.shared.counter.value > self._step0:
                self._step0 = None  # training has started
            elif time.monotonic() - self._t_start > STARTUP_TIMEOUT_S:
                raise TrainingError(f"no node group started within {STARTUP_TIMEOUT_S:.0f} s: does the cluster "
                                    f"have {self.n} free CPUs for --workers {self.n}? (see `ray status`)")
        return episodes

    def finished(self) -> bool:
        if self._bringup is not None and not self._up.is_set():  # only a driver's group alone can be done
            return self.local is not None and self.local.alone and self.local.plan.group in self.done
        return len(self.done) == len(self.plans)

    def stats(self) -> dict[str, Any]:
        """Groups, exchanges and their bytes, target syncs, optimizer updates, restarts."""
        return dict(self.last_stats)

    # ------------------------------------------------------------------- stop
    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._abort.set()
        if self._bringup is not None and not self._up.wait(STARTUP_TIMEOUT_S):
            # ray.init cannot be interrupted: it is let finish, then torn down, but not forever
            print("asyncdqn: ray: Ray did not come up; not shut down", file=sys.stderr)
            self._stop_local_only()
            return
        if self.ray is None:  # Ray never started (stopped early, or not importable): the driver's group only
            self._stop_local_only()
            self._release.set()
            return
        ray = self.ray
        try:
            if self.server is not None:
                self.server.request_stop.remote()
            if self.local is not None:  # its final exchange, before the final state is pulled
                self.local.stop(3 * STOP_WAIT_S)  # workers' stop, the reply in flight, the final one
                if self._solo():  # it never reached the server: the trainer keeps its final state
                    self._mirror_local()
            if self.server is not None and not self._solo():
                if self.runs:
                    ray.wait(list(self.runs.values()), num_returns=len(self.runs), timeout=STOP_WAIT_S)
                if self._state_ref is not None:  # asked before the groups' last exchanges
                    self._pull(wait_s=STATE_TIMEOUT_S)
                self._pull(wait_s=STATE_TIMEOUT_S)  # the final state, for the final checkpoint
        except Exception as exc:  # the server is gone: keep what was pulled last
            print(f"asyncdqn: ray: final state not pulled: {_first_line(exc)}", file=sys.stderr)
        finally:
            if self.local is not None and self.local.alive:  # an error above: do not leave its workers
                self.local.stop(STOP_WAIT_S)
            for a in [*self.groups, self.server]:
                if a is None:
                    continue
                try:
                    ray.kill(a, no_restart=True)
                except Exception:
                    pass
            if self._owns_ray:
                ray.shutdown()
            self._release.set()
        st = self.last_stats
        if st:
            print(f"asyncdqn: ray: {st['groups']} node group(s), {st['exchanges']} exchanges "
                  f"({st['bytes_per_exchange'] / 1024:.0f} KiB each), {st['target_syncs']} target syncs, "
                  f"{st['restarts']} restarts", file=sys.stderr)
