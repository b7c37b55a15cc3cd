"""A ray node group: the local process backend on one node's cores, and its exchanges.

`GroupRunner` is the group, driven step by step; it runs in a `NodeGroup` Ray actor on
every node but the driver's, and in a thread of the driver for the driver's own node
(`LocalGroup` in ray.py).

The group's workers are the process backend's Hogwild workers, unchanged, on a local
copy of the learning state in the node's shared memory (online network, target
network, optimizer moments, a step counter). What differs from a local run:

- the target network is decided by the parameter server (`GroupTarget`: the workers'
  own syncs are no-ops; the group loads the server's target when it changes), except
  while the driver's group is *solo* (the server not up yet: it is the whole run, and
  its workers sync the target themselves until its first exchange hands over);
- the step counter is the group's *view* of the global count: the server's count at
  the last exchange plus the group's own steps since (a lower bound of the true count);
- every --ray-sync-seconds, and whenever that view crosses a multiple of
  --target-update-steps, the group exchanges a weight delta with the parameter server
  (see `ray_server.py` for the protocol and what stays exact); at most one exchange
  is in flight, and the workers never wait for it.

Worker processes that fail are restarted by the process backend as on one machine;
each restart is charged to the run's --max-restarts by the driver (reported through
the server by an actor, read directly for the driver's group). The group actor itself,
if its process dies, is restarted by Ray (its workers die with it: they hold
PR_SET_PDEATHSIG) and starts again from the server's state.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

from asyncdqn.backends.base import SPAWN, OwnedLock, SharedCounter, SharedTarget, SharedTraining
from asyncdqn.backends.process import ProcessBackend
from asyncdqn.backends.ray_server import flatten, unflatten
from asyncdqn.backends.shared import make_optimizer
from asyncdqn.config import Config
from asyncdqn.errors import TrainingError
from asyncdqn.learners.common import EpisodeRecord
from asyncdqn.model import build_model

RESTART_SEED_STRIDE = 1_000_003  # a restarted group's workers use seed + incarnation * stride
CALL_TIMEOUT_S = 300.0  # a group waiting longer than this for the server gives up (its death is seen at once)
POLL_S = 0.005  # how often the group looks at its workers' counts
MIN_EXCHANGE_S = 0.01  # at most 100 exchanges a second per group, whatever the target cadence
MOMENTS_EVERY_S = 1.0  # how often the optimizer moments travel with an exchange


class GroupTarget(SharedTarget):
    """A node group's target network: its workers read it, the parameter server sets it.

    `solo`: the group is the whole run so far (the driver's group before the server is up):
    its workers sync the target themselves, exactly as in the process backend, until
    `end_solo` hands target syncs over to the server."""

    def __init__(self, target_model: torch.nn.Module, solo: bool = False) -> None:
        super().__init__(target_model)
        self._solo = SPAWN.Value("b", int(solo), lock=False)

    @property
    def solo(self) -> bool:
        return bool(self._solo.value)

    def sync_from(self, model: torch.nn.Module, step: int) -> None:
        if not self._solo.value:
            return  # the parameter server owns target syncs (the group loads them with `load`)
        with self.lock:
            if self._solo.value:  # checked again under the lock: no sync slips past end_solo
                self._copy_locked(model, step)

    def end_solo(self) -> tuple[int, int, np.ndarray]:
        """Stop syncing locally; returns (syncs so far, last sync step, the target, flat)."""
        with self.lock:
            self._solo.value = 0
            flat = flatten([p.detach().numpy() for p in self.model.parameters()])
            return self.syncs, self.last_sync_step, flat


def build_group_state(cfg: Config, obs_dim: int, n_actions: int, hello: dict[str, Any],
                      solo: bool = False) -> SharedTraining:
    """The group's local learning state, in shared memory, initialised from the server's hello
    (`solo`: its workers sync the target themselves until the server is up, see GroupTarget)."""
    model = build_model(obs_dim, n_actions, cfg.hidden_sizes, cfg.seed)
    shapes = [tuple(p.shape) for p in model.parameters()]
    with torch.no_grad():
        for p, a in zip(model.parameters(), unflatten(hello["weights"], shapes), strict=True):
            p.copy_(torch.from_numpy(a.copy()))
    target_model = copy.deepcopy(model)
    for p in target_model.parameters():
        p.requires_grad_(False)
    model.share_memory()
    target_model.share_memory()
    lock = OwnedLock()
    optimizer = make_optimizer(cfg, model, lock)  # the same optimizer (and math) as a local run
    optimizer.load_state_tensors({k: torch.from_numpy(np.array(v)) for k, v in hello["optim"].items()})
    target = GroupTarget(target_model, solo)
    target.load(unflatten(hello["target"], shapes), hello["target_syncs"], hello["last_sync_step"])
    counter = SharedCounter(cfg.resolved_workers())
    return SharedTraining(model=model, optimizer=optimizer, target=target, counter=counter, optimizer_lock=lock)


class GroupLink:
    """The group's side of the exchange protocol (everything but the Ray call itself)."""

    def __init__(self, shared: SharedTraining, workers: range, hello: dict[str, Any], target_every: int) -> None:
        self.shared, self.workers, self.target_every = shared, workers, target_every
        self.params = [p.detach().numpy() for p in shared.model.parameters()]  # views of shared memory
        self.shapes = [tuple(p.shape) for p in self.params]
        self.base = np.array(hello["weights"], dtype=np.float32)  # what the server's master held when sent
        self.reported = sum(hello["per_worker"])  # own steps the server has counted
        self.global_step = int(hello["step"])
        self.target_version = int(hello["target_version"])
        self.optim_t0 = int(hello["optim"]["step"][0])
        self.restarts_sent = 0
        self.stop = bool(hello["stop"])
        self.last_moments = time.monotonic()
        self.cpu_clock = time.process_time  # the group process's CPU: its exchange (and polling) cost
        self.cpu0 = self.cpu_clock()
        self._snapshot: np.ndarray | None = None
        self._own = 0
        per_worker = [0] * len(shared.counter.per_worker())
        per_worker[workers.start:workers.stop] = list(hello["per_worker"])
        shared.counter.restore(self.global_step, per_worker)

    def own_steps(self) -> int:
        pw = self.shared.counter.per_worker()
        return sum(pw[self.workers.start:self.workers.stop])

    def next_multiple(self) -> int:
        """The next multiple of --target-update-steps after the last global count: exchange on reaching it."""
        return (self.global_step // self.target_every + 1) * self.target_every

    def message(self, episodes: list[EpisodeRecord], restarts: list[dict[str, Any]], final: bool) -> dict[str, Any]:
        """Snapshot counts first, then weights: every step counted has its update in the delta."""
        pw = self.shared.counter.per_worker()
        own_pw = pw[self.workers.start:self.workers.stop]
        self._own = sum(own_pw)
        self._snapshot = flatten(self.params)
        now = time.monotonic()
        moments = None
        if final or now - self.last_moments >= MOMENTS_EVERY_S:
            self.last_moments = now
            moments = {k: v.numpy() for k, v in self.shared.optimizer.state_tensors().items() if k != "step"}
        msg = {"delta": self._snapshot - self.base, "steps": self._own - self.reported, "first": self.workers.start,
               "per_worker": own_pw, "episodes": episodes, "restarts": restarts[self.restarts_sent:],
               "updates": int(self.shared.optimizer.step_count) - self.optim_t0, "moments": moments,
               "target_version": self.target_version, "cpu_s": self.cpu_clock() - self.cpu0}
        self.restarts_sent = len(restarts)
        return msg

    def apply(self, reply: dict[str, Any]) -> None:
        """Move the local weights by (master - what was sent), keeping what the workers learned meanwhile."""
        self.stop = bool(reply["stop"])
        if reply.get("stale"):
            return
        assert self._snapshot is not None
        master: np.ndarray = reply["weights"]
        for view, d in zip(self.params, unflatten(master - self._snapshot, self.shapes), strict=True):
            view += d  # Hogwild-style, like the workers' own updates
        self.base = np.array(master, dtype=np.float32)
        self.reported = self._own
        self.global_step = int(reply["step"])
        # The group's view of the global count: the server's count plus own steps since the snapshot.
        self.shared.counter.restore(self.global_step + self.own_steps() - self._own, [])
        if "target" in reply:
            self.shared.target.load(unflatten(reply["target"], self.shapes), int(reply["target_syncs"]),
                                    int(reply["last_sync_step"]))
        self.target_version = int(reply["target_version"])


class GroupRunner:
    """One node group, driven step by step: its process backend on a local learning state, and
    its exchanges with the parameter server (at most one in flight; the workers never wait).

    `NodeGroup.run` (a Ray actor, on every node but the driver's) and `LocalGroup` (a thread
    of the driver, for the driver's own node: see ray.py) both loop over `step` until `done`,
    then call `finish`. With `relay` (the actors), the group's finished episodes and worker
    restarts travel to the server with its exchanges; without it (the driver's group), `step`
    returns the episodes and the driver reads the restarts from `backend.restarts`.
    """

    def __init__(self, cfg: Config, group: int, incarnation: int, workers: range, shared: SharedTraining,
                 hello: dict[str, Any], relay: bool = True) -> None:
        self.cfg, self.group, self.incarnation, self.workers = cfg, group, incarnation, workers
        self.shared, self.relay = shared, relay
        self.target_syncs0 = int(hello["target_syncs"])
        self.backend = ProcessBackend(cfg, shared, workers)
        self.link = GroupLink(shared, workers, hello, cfg.target_update_steps)
        self.server: Any = None
        self.registered = False  # the server has answered this incarnation's hello
        self.exchanges = 0
        self._hello: Any = None  # ObjectRef of a hello in flight
        self._hello_sent = 0.0
        self._ref: Any = None  # ObjectRef of the exchange in flight
        self._sent = 0.0
        self._last = time.monotonic()  # the last exchange sent
        self._outbox: list[EpisodeRecord] = []  # episodes for the next exchange (relay)

    @property
    def done(self) -> bool:
        """The server said stop, or every worker reached the step budget."""
        return self.link.stop or self.backend.finished()

    def start(self) -> None:
        """Start the worker processes (before `connect` if need be: they learn meanwhile)."""
        self.backend.start()

    def connect(self, server: Any, registered: bool) -> None:
        """Talk to `server` from now on. `registered`: this incarnation's hello was answered already
        (the state was built from it); otherwise send it now, and exchange once it is answered."""
        self.server = server
        if registered:
            self.registered = True
            return
        self._hello_sent = time.monotonic()  # before _hello: `step` may run in another thread
        self._hello = server.hello.remote(self.group, self.incarnation, self.workers.start, len(self.workers))

    def step(self, timeout: float) -> list[EpisodeRecord]:
        """Poll the workers for up to `timeout` s, take an exchange's reply that arrived, send the next
        exchange when due. Returns the finished episodes it does not relay."""
        episodes = self.backend.poll(timeout)
        if self.relay:
            self._outbox.extend(episodes)
            episodes = []
        if not self.registered:
            self._await_hello(0.0)
        if self.registered and self._receive(0.0):
            now = time.monotonic()
            crossed = (self.shared.counter.value >= self.link.next_multiple()
                       and now >= self._last + MIN_EXCHANGE_S)
            if now >= self._last + self.cfg.ray_sync_seconds or crossed:
                self._send(final=False)
        return episodes

    def finish(self, timeout: float = CALL_TIMEOUT_S, hello_timeout: float | None = None) -> dict[str, Any]:
        """Stop the workers, then send the final exchange (their last steps and updates), waiting
        up to `hello_timeout` (default: `timeout`) s for a hello still in flight first.
        Returns this incarnation's own env steps and exchanges."""
        self.backend.stop()
        if self._hello is not None:
            self._await_hello(timeout if hello_timeout is None else hello_timeout)
        # Not while an earlier exchange is unanswered: its delta would be sent twice.
        if self.registered and self._receive(timeout):
            self._send(final=True)
            self._receive(timeout)
        return {"steps": self.link.reported, "exchanges": self.exchanges}

    def close(self) -> None:
        """Stop the worker processes (idempotent; `finish` has done it on a normal end)."""
        self.backend.stop()

    # --------------------------------------------------------------- exchanges
    def _await_hello(self, timeout: float) -> None:
        import ray

        if self._hello is None:
            return
        ready, _ = ray.wait([self._hello], timeout=timeout)
        if not ready:
            if time.monotonic() - self._hello_sent > CALL_TIMEOUT_S:
                raise TrainingError(f"node group {self.group}: the parameter server did not answer "
                                    f"its hello within {CALL_TIMEOUT_S:.0f} s")
            return
        hello: dict[str, Any] = ray.get(self._hello)
        self._hello = None
        self.registered = True
        self._last = 0.0  # exchange at once: what the workers learned before the server was up
        if hello["stop"]:
            self.link.stop = True

    def _send(self, final: bool) -> None:
        restarts = self.backend.restarts.log if self.relay else []
        msg = self.link.message(self._outbox, restarts, final)
        self._outbox = []
        target = self.shared.target
        if isinstance(target, GroupTarget) and target.solo:  # the first exchange after solo
            syncs, last_sync_step, flat = target.end_solo()
            if syncs > self.target_syncs0:
                msg["solo"] = {"syncs": syncs - self.target_syncs0, "last_sync_step": last_sync_step,
                               "target": flat}
        self._ref = self.server.exchange.remote(self.group, self.incarnation, msg)
        self._sent = self._last = time.monotonic()

    def _receive(self, timeout: float) -> bool:
        """Apply the reply to the exchange in flight if it is there (waiting up to `timeout` s).
        True if no exchange is in flight any more."""
        import ray

        if self._ref is None:
            return True
        ready, _ = ray.wait([self._ref], timeout=timeout)
        if not ready:
            if time.monotonic() - self._sent > CALL_TIMEOUT_S:
                raise TrainingError(f"node group {self.group}: the parameter server did not answer "
                                    f"an exchange within {CALL_TIMEOUT_S:.0f} s")
            return False
        reply, self._ref = ray.get(self._ref), None
        self.link.apply(reply)
        self.exchanges += 1
        return True


class NodeGroup:
    """The Ray actor: `run` trains the group until the server says stop (or the budget is reached)."""

    def __init__(self, cfg: Config, group: int, first: int, count: int, obs_dim: int, n_actions: int,
                 server_name: str) -> None:
        # The server is found by name (not passed as a handle) so that Ray can restart
        # this actor from its plain constructor arguments alone.
        torch.set_num_threads(1)
        self.cfg, self.group, self.workers = cfg, group, range(first, first + count)
        self.obs_dim, self.n_actions, self.server_name = obs_dim, n_actions, server_name

    def run(self, incarnation: int) -> dict[str, Any]:
        """Train until stop; returns this incarnation's own env steps and exchanges."""
        import ray

        cfg = self.cfg
        if incarnation > 0:  # a restarted group must not replay the same episodes
            cfg = cfg.replace(seed=cfg.seed + incarnation * RESTART_SEED_STRIDE)
        server = ray.get_actor(self.server_name)
        ref: Any = server.hello.remote(self.group, incarnation, self.workers.start, len(self.workers))
        hello: dict[str, Any] = ray.get(ref, timeout=CALL_TIMEOUT_S)
        shared = build_group_state(cfg, self.obs_dim, self.n_actions, hello)
        runner = GroupRunner(cfg, self.group, incarnation, self.workers, shared, hello)
        runner.connect(server, registered=True)
        runner.start()
        try:
            while not runner.done:
                runner.step(POLL_S)
            return runner.finish()  # every worker done: the last steps and updates travel with the final exchange
        finally:
            runner.close()
