"""Ray backend: a Hogwild group of process workers on each Ray node, and one parameter server.

    driver (RayBackend, in the trainer's process)
        | poll: pull counters, episodes, restarts; refresh (before an evaluation or a
        v       checkpoint, and every FULL_EVERY_S): the master weights, target, optimizer
                state when they changed -> the trainer's SharedTraining
    ParameterServer actor (ray_server.py): master weights, target network, global step
        count; decides target syncs and the stop
        ^
        | exchange every --ray-sync-seconds (and at target-sync multiples):
        | weight delta + steps + episodes up, master (+ target) down; --ray-compress bf16:
        | both as bfloat16, the master as its difference from what the group holds
    NodeGroup actors (ray_group.py), one per node: the process backend, unchanged,
        running that node's share of --workers as Hogwild processes in shared memory

On one node this is the process backend plus one exchange every --ray-sync-seconds;
on N nodes the groups learn in parallel and mix through the server. `--workers` is
the number of worker processes in the whole cluster; they are spread over the alive
nodes in order (the driver's node first), each node taking as many as it has CPUs.

Faults: a worker process that dies is restarted inside its group; a group actor that
dies (killed, node lost) is restarted by Ray from the server's state. Both count
against one budget, --max-restarts for the whole run, recorded in eval.json
(`worker_restarts`). Losing the parameter server stops the run with a TrainingError;
the trainer keeps the weights last pulled from it (at most FULL_EVERY_S old) in the final
checkpoint and every earlier checkpoint untouched.

Ray is an optional dependency: it is imported only when this backend starts.
"""

from __future__ import annotations

import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from asyncdqn.backends.base import Backend, RestartBudget, SharedTraining
from asyncdqn.backends.ray_group import NodeGroup, network_template
from asyncdqn.backends.ray_server import ParameterServer, ServerInit, flatten, unflatten
from asyncdqn.config import Config
from asyncdqn.episodes import EpisodeRecord
from asyncdqn.errors import ConfigError, TrainingError
from asyncdqn.signals import Terminated, handlers_kept

STATE_TIMEOUT_S = 30.0  # a single call to the server (ping, started) waiting longer than this: lost
STATE_WAIT_S = 2.0  # one poll waits this long for the server's state, then returns (and waits again next poll)
LOST_AFTER_S = 120.0  # no state from a live but silent server for this long: lost (an overloaded machine is slow)
STOP_WAIT_S = 10.0  # how long stop() lets groups finish and send their last exchange
CONNECT_TIMEOUT_S = 5.0  # to reach --ray-address before handing it to Ray
STARTUP_TIMEOUT_S = 180.0  # no env step at all after this long: the groups cannot be scheduled
# A poll reads counts and episodes; the weights, target and optimizer state come with refresh() (before
# an evaluation or a checkpoint) and with a poll at least this long after the last full state, so a run
# whose server is lost keeps weights at most this old. Pong on 2 simulated nodes pulled 7-20 MiB at most
# of the five polls a second.
FULL_EVERY_S = 10.0
# For a Ray this package starts (and the clusters `bench` starts): worker processes at nice 0, as the
# process backend's workers and everything else the user runs, not Ray's default of 15; and objects up
# to 1 MiB passed inline in the calls, not through the object store (Ray's default limit is 100 KiB):
# an exchange with a new target or the optimizer moments is 150-290 KB for the LunarLander net, and
# through the object store it cost the raylet 2.5 % of a core on one node (2.0 -> 0.8 %, measured).
RAY_SYSTEM_CONFIG: dict[str, Any] = {"worker_niceness": 0, "max_direct_call_object_size": 1 << 20}


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("backend: 'ray' needs the Ray package: pip install 'asyncdqn[ray]'") from None
    return ray


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


def niceness_warning(group: int, nice: int) -> str:
    """The one line a run prints when a node group's workers could not leave Ray's low priority."""
    return (f"asyncdqn: warning: ray node group {group}'s workers run at nice {nice} (Ray's default for worker "
            f"processes) and yield to every other process on their node; start that node's Ray with "
            f"RAY_worker_niceness=0 (docs/ray.md)")


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


class RayBackend(Backend):
    """The trainer's side: places the server and the groups, mirrors the server into SharedTraining."""

    def __init__(self, cfg: Config, shared: SharedTraining) -> None:
        self.cfg, self.shared = cfg, shared
        self.n = cfg.resolved_workers()
        self.ray: Any = None
        self.server: Any = None
        self.plans: list[GroupPlan] = []
        self.groups: list[Any] = []  # actor handles, by group
        self.runs: dict[int, Any] = {}  # group -> ObjectRef of its running `run` task
        self.incarnation: list[int] = []  # of the `run` task last sent to each group
        self.restarts = RestartBudget(cfg.max_restarts)
        self.done: set[int] = set()
        self.last_stats: dict[str, Any] = {}
        self._master_version = -1
        self._target_version = -1
        self._optim_version = -1
        self._owns_ray = False
        self._stopped = False
        self._t_start = 0.0
        self._step0: int | None = None
        self._state_ref: Any = None  # a state() call in flight
        self._state_full = False  # whether that call asked for the weights (target, optimizer state)
        self._last_full = 0.0  # when the last full state arrived
        self._pending: list[EpisodeRecord] = []  # episodes a refresh() pulled, for the next poll
        self._fresh = False  # a full state landed since the last poll began: refresh() has nothing to add
        self._last_state = 0.0
        self._nice_warned: set[str] = set()  # groups whose low priority was reported

    # ------------------------------------------------------------------ start
    def _init_ray(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        _check_reachable(self.cfg.ray_address)
        try:
            with handlers_kept():  # our SIGTERM handling (a clean stop, exit 143), not Ray's abort
                if self.cfg.ray_address is not None:
                    ray.init(address=self.cfg.ray_address, log_to_driver=False, logging_level="WARNING")
                else:
                    # address="local": a private Ray, never a cluster someone started on this machine
                    ray.init(address="local", num_cpus=self.n, include_dashboard=False,
                             _node_ip_address="127.0.0.1", log_to_driver=False, logging_level="WARNING",
                             _system_config=RAY_SYSTEM_CONFIG)
        except SystemExit as exc:  # SIGTERM inside ray.init, where Ray's handler (sys.exit) was in force
            self._owns_ray = ray.is_initialized()
            if exc.code == signal.SIGTERM:
                raise Terminated() from None
            raise
        except ConnectionError as exc:
            raise ConfigError(f"ray_address: cannot connect to Ray at {self.cfg.ray_address!r}: {exc}") from None
        self._owns_ray = True

    def _nodes(self) -> list[tuple[str, int]]:
        """Alive nodes with CPUs, the driver's node first."""
        here = self.ray.get_runtime_context().get_node_id()
        nodes = [(n["NodeID"], int(n.get("Resources", {}).get("CPU", 0))) for n in self.ray.nodes() if n["Alive"]]
        nodes = [n for n in nodes if n[1] > 0]
        return sorted(nodes, key=lambda n: n[0] != here)

    def start(self) -> None:
        self.ray = ray = import_ray()
        self._init_ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.plans = plan_groups(self._nodes(), self.n)
        s = self.shared
        template = network_template(s.model)
        init = ServerInit(weights=flatten(_params(s.model)), target=flatten(_params(s.target.model)),
                          target_syncs=s.target.syncs, last_sync_step=s.target.last_sync_step,
                          optim={k: v.numpy() for k, v in s.optimizer.state_tensors().items()},
                          total=s.counter.value, per_worker=s.counter.per_worker())
        name = f"asyncdqn-ps-{uuid.uuid4().hex[:12]}"
        here = ray.get_runtime_context().get_node_id()
        server_cls = ray.remote(num_cpus=0, max_restarts=0)(ParameterServer)
        self.server = server_cls.options(
            name=name, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True)).remote(
            self.cfg, init, len(self.plans))
        group_cls = ray.remote(max_restarts=self.cfg.max_restarts, max_task_retries=0)(NodeGroup)
        self.groups = [
            group_cls.options(num_cpus=p.count, name=f"{name}-group-{p.group}",
                              scheduling_strategy=NodeAffinitySchedulingStrategy(p.node_id, soft=True))
            .remote(self.cfg, p.group, p.first, p.count, template, name)
            for p in self.plans]
        self.incarnation = [0] * len(self.plans)
        self.runs = {g: a.run.remote(0) for g, a in enumerate(self.groups)}
        try:  # the server first: on a loaded machine its process can take a while to start
            ray.get(self.server.ping.remote(), timeout=STARTUP_TIMEOUT_S)
        except Exception as exc:
            raise TrainingError(f"the parameter server did not start within {STARTUP_TIMEOUT_S:.0f} s "
                                f"({type(exc).__name__}: {_first_line(exc, 200)})") from None
        self._t_start, self._step0 = time.monotonic(), s.counter.value
        self._last_state = time.monotonic()

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
        p = self.plans[g]
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

    def _pull(self, wait_s: float = STATE_WAIT_S, full: bool = True) -> list[EpisodeRecord]:
        """Mirror the server's state into the trainer's SharedTraining (`full`: the weights, target and
        optimizer state too, when they changed); returns new episodes.

        A slow answer (an overloaded machine) is waited for across polls, never asked twice
        (the server hands out each episode once); silence for LOST_AFTER_S, or a dead server, is fatal."""
        if self._state_ref is None:
            self._state_full = full
            self._state_ref = self.server.state.remote(self._target_version, self._optim_version,
                                                       self._master_version, full)
        ready, _ = self.ray.wait([self._state_ref], timeout=wait_s)
        if not ready:
            if time.monotonic() - self._last_state > LOST_AFTER_S:
                raise self._server_lost(TimeoutError(f"no answer for {LOST_AFTER_S:.0f} s"))
            return []
        ref, self._state_ref = self._state_ref, None
        try:
            st = self.ray.get(ref)
        except Exception as exc:
            raise self._server_lost(exc) from None
        self._last_state = time.monotonic()
        s = self.shared
        if self._state_full:  # the versions held move only with what was sent
            self._last_full = self._last_state
            self._fresh = True
            shapes = [tuple(p.shape) for p in s.model.parameters()]
            if "weights" in st:
                for view, a in zip(_params(s.model), unflatten(st["weights"], shapes), strict=True):
                    np.copyto(view, a)
            self._master_version = int(st["master_version"])
            if "target" in st:
                s.target.load(unflatten(st["target"], shapes), int(st["target_syncs"]), int(st["last_sync_step"]))
            self._target_version = int(st["target_version"])
            if "optim" in st:
                s.optimizer.load_state_tensors({k: torch.from_numpy(np.array(v)) for k, v in st["optim"].items()})
            self._optim_version = int(st["optim_version"])
        s.counter.restore(st["total"], st["per_worker"])
        for r in st["restarts"]:  # worker processes restarted inside a group: the run's one budget
            self.restarts.charge(int(r["worker"]), str(r["reason"]), int(r["step"]))
        self.last_stats = {**st["stats"], "restarts": len(self.restarts.log),
                           "groups_planned": [{"node": p.node_id[:12], "workers": p.count} for p in self.plans]}
        for g, nice in st["stats"].get("group_nice", {}).items():
            if nice > 0 and g not in self._nice_warned:
                self._nice_warned.add(g)
                print(niceness_warning(int(g), nice), file=sys.stderr)
        return list(st["episodes"])

    def poll(self, timeout: float) -> list[EpisodeRecord]:
        if self.runs:
            ready, _ = self.ray.wait(list(self.runs.values()), num_returns=1, timeout=timeout)
            for ref in ready:
                self._collect(ref)
        else:
            time.sleep(timeout)
        episodes, self._pending = self._pending, []
        self._fresh = False
        # a run that averages the weights reads them after every poll (refresh): one full call, not two
        full = self.cfg.average_steps is not None or time.monotonic() - self._last_full >= FULL_EVERY_S
        episodes += self._pull(full=full)
        if self._step0 is not None:
            if self.shared.counter.value > self._step0:
                self._step0 = None  # training has started
            elif time.monotonic() - self._t_start > STARTUP_TIMEOUT_S:
                raise TrainingError(f"no node group started within {STARTUP_TIMEOUT_S:.0f} s: does the cluster "
                                    f"have {self.n} free CPUs for --workers {self.n}? (see `ray status`)")
        return episodes

    def refresh(self) -> None:
        """The server's weights, target and optimizer state into SharedTraining now (an evaluation or a
        checkpoint reads them next). A call in flight is answered first (it may carry counts only);
        its episodes wait for the next poll. Nothing to do when a full state landed since the
        poll began (this poll's own, or an earlier refresh's)."""
        if self.server is None or self._stopped or (self._fresh and self._state_ref is None):
            return
        if self._state_ref is not None:
            self._pending += self._pull(wait_s=STATE_TIMEOUT_S)
            if self._state_ref is not None:  # no answer within STATE_TIMEOUT_S: keep what was pulled last
                return
        self._pending += self._pull(wait_s=STATE_TIMEOUT_S, full=True)

    def finished(self) -> bool:
        return len(self.done) == len(self.plans)

    def stats(self) -> dict[str, Any]:
        """Groups, exchanges and their bytes, target syncs, optimizer updates, restarts."""
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
                if self._state_ref is not None:  # asked before the groups' last exchanges
                    self._pull(wait_s=STATE_TIMEOUT_S)
                self._pull(wait_s=STATE_TIMEOUT_S)  # the final state, for the final checkpoint
        except Exception as exc:  # the server is gone: keep what was pulled last
            print(f"asyncdqn: ray: final state not pulled: {_first_line(exc)}", file=sys.stderr)
        finally:
            for a in [*self.groups, self.server]:
                if a is None:
                    continue
                try:
                    ray.kill(a, no_restart=True)
                except Exception:
                    pass
            if self._owns_ray:
                ray.shutdown()
        st = self.last_stats
        if st:
            bf16 = ", bf16" if st.get("compress") == "bf16" else ""
            print(f"asyncdqn: ray: {st['groups']} node group(s), {st['exchanges']} exchanges "
                  f"({st['bytes_per_exchange'] / 1024:.0f} KiB each{bf16}), {st['target_syncs']} target syncs, "
                  f"{st['restarts']} restarts", file=sys.stderr)
