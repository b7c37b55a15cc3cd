"""A ray node group: one Ray actor per node running the local process backend on that node's cores.

The group's workers are the process backend's Hogwild workers, unchanged, on a local
copy of the learning state in the node's shared memory (online network, target
network, optimizer moments, a step counter). What differs from a local run:

- with several groups, the target network is decided by the parameter server
  (`GroupTarget`: the workers' own syncs are no-ops; the group loads the server's target
  when it changes) and the step counter is the group's *view* of the global count: the
  server's count at the last exchange plus the group's own steps since (a lower bound);
  the group exchanges every --ray-sync-seconds and whenever that view crosses a
  multiple of --target-update-steps;
- a run's only group (one node) owns the target as the process backend does: its
  count *is* the global count, the worker whose segment crosses a multiple syncs the
  target there, and the group sends the new target with its next exchange, which it
  makes every max(--ray-sync-seconds, SOLE_EXCHANGE_S) only: there is no other group to mix
  with (see `ray_server.py` for the protocol and what stays exact).

Worker processes that fail are restarted by the process backend as on one machine;
each restart is reported to the server and charged to the run's --max-restarts by the
driver. The group actor itself, if its process dies, is restarted by Ray (its workers
die with it: they hold PR_SET_PDEATHSIG) and starts again from the server's state.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Any

import numpy as np
import torch

from asyncdqn.algo.bf16 import from_bf16, to_bf16
from asyncdqn.backends.base import SharedTarget, SharedTraining
from asyncdqn.backends.process import ProcessBackend
from asyncdqn.backends.ray_server import flatten, normal_priority, unflatten
from asyncdqn.backends.shared import make_obs_stats, share_training
from asyncdqn.config import Config
from asyncdqn.episodes import EpisodeRecord
from asyncdqn.errors import ConfigError, TrainingError

RESTART_SEED_STRIDE = 1_000_003  # a restarted group's workers use seed + incarnation * stride
CALL_TIMEOUT_S = 300.0  # a group waiting longer than this for the server gives up (its death is seen at once)
POLL_S = 0.005  # how often a group sharing the target looks at its workers' counts (crossings)
OWNER_POLL_S = 0.05  # how often a group with no crossing to watch reads its workers' pipes (episodes, deaths)
# A run's only group mixes with no other: its exchanges just feed the driver (progress, evaluations,
# checkpoints, the stop), which polls the server every 0.2 s. Exchanging every 0.5 s instead of 0.1 s
# gave its workers 1.90-1.91 of the 2 cores instead of 1.88 (benchmarks/records/ray-sole-2026-12-01).
SOLE_EXCHANGE_S = 0.5
MIN_EXCHANGE_S = 0.01  # at most 100 exchanges a second per group, whatever the target cadence
# How often the optimizer moments (twice the weights' bytes for Adam) travel with an exchange: they serve
# checkpoints only, and every second they were most of a group's upload (Pong: 13 of 20 MiB).
MOMENTS_EVERY_S = 5.0


class GroupTarget(SharedTarget):
    """A node group's target network. With several groups only the parameter server sets it (the
    workers' syncs are no-ops; the group loads the server's target); a run's only group owns its
    syncs, as the process backend does (`owner`): its count is the global count."""

    def __init__(self, target_model: torch.nn.Module, owner: bool) -> None:
        super().__init__(target_model)
        self.owner = owner

    def sync_from(self, model: torch.nn.Module, step: int) -> None:
        if self.owner:  # the worker whose segment crossed the multiple, exactly there
            super().sync_from(model, step)

    def snapshot(self) -> tuple[np.ndarray, int, int, int]:
        """(flat weights, version, syncs, last sync step), read together under the target's lock."""
        with self.lock:
            flat = flatten([p.detach().numpy() for p in self.model.parameters()])
            return flat, self.version, self.syncs, self.last_sync_step


def network_template(model: torch.nn.Module) -> torch.nn.Module:
    """The run's network without its values, for the node groups: its class and its parameters' shapes
    and order are all a group needs (the weights come from the server), so any network the trainer
    builds (MLP, MinAtar or Atari conv net, whatever layers it has) runs on Ray unchanged.

    Only `parameters()` travel in the exchanges; a module with buffers (running statistics, as batch
    norm keeps) would have state the exchanges never carry, so it is refused."""
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        raise ConfigError(f"backend: the ray backend exchanges a network's parameters only; "
                          f"{type(model).__name__} also has buffers ({', '.join(buffers[:3])}): use --backend process")
    # On the meta device: shapes without values, a few KB for any network (the Atari net's values are
    # 2.7 MB), passed inline in the actor's constructor arguments, so Ray can restart the actor from them
    # alone (arguments put in the object store are a restart's dependency and Ray warns of it).
    template = copy.deepcopy(model).to("meta")
    for p in template.parameters():
        p.grad = None
        p.requires_grad_(True)
    return template


def build_group_state(cfg: Config, template: torch.nn.Module, hello: dict[str, Any]) -> SharedTraining:
    """The group's local learning state, in shared memory, initialised from the server's hello: a copy
    of `template` (network_template) holding the master weights."""
    model = copy.deepcopy(template).to_empty(device="cpu")  # every value is set from the hello below
    shapes = [tuple(p.shape) for p in model.parameters()]
    size = sum(int(np.prod(s)) for s in shapes)
    if size != hello["weights"].size:
        raise TrainingError(f"node group: the network has {size} parameters, "
                            f"the server's master {hello['weights'].size}")
    with torch.no_grad():
        for p, a in zip(model.parameters(), unflatten(hello["weights"], shapes), strict=True):
            p.copy_(torch.from_numpy(a.copy()))
    # the same layout as a local run (one flat parameter buffer: the optimizer's one-pass update)
    shared = share_training(cfg, model, lambda target_model: GroupTarget(target_model, bool(hello["owns_target"])))
    shared.optimizer.load_state_tensors({k: torch.from_numpy(np.array(v)) for k, v in hello["optim"].items()})
    shared.target.load(unflatten(hello["target"], shapes), hello["target_syncs"], hello["last_sync_step"])
    shared.obs_stats = make_obs_stats(cfg)  # bounds only (config.validate refuses running with ray): fixed
    return shared


class GroupLink:
    """The group's side of the exchange protocol (everything but the Ray call itself).

    `base` is what the server's master held when it last replied (float32), or with
    --ray-compress bf16 the vector the server keeps as this group's (its hello's master plus every
    bf16 value sent since, either way: `ray_server.py`'s module doc)."""

    def __init__(self, shared: SharedTraining, workers: range, hello: dict[str, Any], target_every: int) -> None:
        self.shared, self.workers, self.target_every = shared, workers, target_every
        self.params = [p.detach().numpy() for p in shared.model.parameters()]  # views of shared memory
        self.shapes = [tuple(p.shape) for p in self.params]
        self.base = np.array(hello["weights"], dtype=np.float32)  # what the server's master held when sent
        self.bf16 = hello["compress"] == "bf16"
        self._up: np.ndarray | None = None  # bf16: the delta in flight (uint16 bit patterns)
        # bf16 scratch, reused by every exchange (fresh large arrays page-fault in an actor's process)
        self._f32 = np.empty(self.base.size if self.bf16 else 0, np.float32)
        self._u32 = np.empty(self.base.size if self.bf16 else 0, np.uint32)
        self.reported = sum(hello["per_worker"])  # own steps the server has counted
        self.global_step = int(hello["step"])
        self.target_version = int(hello["target_version"])
        target = shared.target
        # the run's only group syncs its own target (see GroupTarget); None: the server decides syncs
        self.own_target = target if isinstance(target, GroupTarget) and target.owner else None
        self.target_sent = target.version  # the local target version the server holds (owner only)
        self.optim_t0 = int(hello["optim"]["step"][0])
        self.restarts_sent = 0
        self.stop = bool(hello["stop"])
        self.last_moments = time.monotonic()
        self.cpu0 = time.process_time()  # the group process's CPU from here on: its exchange (and polling) cost
        self._snapshot: np.ndarray | None = None
        self._own = 0
        per_worker = [0] * len(shared.counter.per_worker())
        per_worker[workers.start:workers.stop] = list(hello["per_worker"])
        shared.counter.restore(self.global_step, per_worker)

    @property
    def owns_target(self) -> bool:
        return self.own_target is not None

    def own_steps(self) -> int:
        pw = self.shared.counter.per_worker()
        return sum(pw[self.workers.start:self.workers.stop])

    def next_multiple(self) -> int:
        """The next multiple of --target-update-steps after the last global count: exchange on reaching it
        (never with 0: no target network, nothing to sync)."""
        if not self.target_every:
            return sys.maxsize
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
        delta = self._snapshot - self.base
        if self.bf16:
            # what the rounding leaves out stays above the base: the next delta carries it
            self._up = to_bf16(delta, work=self._u32)
        msg = {"steps": self._own - self.reported, "first": self.workers.start,
               "per_worker": own_pw, "episodes": episodes, "restarts": restarts[self.restarts_sent:],
               "updates": int(self.shared.optimizer.step_count) - self.optim_t0, "moments": moments,
               "target_version": self.target_version, "cpu_s": time.process_time() - self.cpu0}
        msg.update({"delta_bf16": self._up} if self.bf16 else {"delta": delta})
        if self.own_target is not None and self.own_target.version != self.target_sent:
            flat, self.target_sent, syncs, last = self.own_target.snapshot()
            msg.update(target=flat, target_syncs=syncs, last_sync_step=last)
        self.restarts_sent = len(restarts)
        return msg

    def apply(self, reply: dict[str, Any]) -> None:
        """Move the local weights by (master - what was sent), keeping what the workers learned meanwhile.

        bf16: add the delta sent and the reply's update to the base, as the server adds them to its copy,
        and the update to the weights (the delta sent is in them already)."""
        self.stop = bool(reply["stop"])
        if reply.get("stale"):
            return
        assert self._snapshot is not None
        if self.bf16:
            assert self._up is not None
            self.base += from_bf16(self._up, out=self._f32)  # in the server's order: bit for bit its copy
            update = from_bf16(reply["update_bf16"], out=self._f32)
            self.base += update
        else:
            master: np.ndarray = reply["weights"]
            update = master - self._snapshot
            self.base = np.array(master, dtype=np.float32)
        for view, d in zip(self.params, unflatten(update, self.shapes), strict=True):
            view += d  # Hogwild-style, like the workers' own updates
        self.reported = self._own
        self.global_step = int(reply["step"])
        if self.owns_target:
            return  # the only group: its counter is the global count, its target the run's
        # The group's view of the global count: the server's count plus own steps since the snapshot.
        self.shared.counter.restore(self.global_step + self.own_steps() - self._own, [])
        if "target" in reply:
            self.shared.target.load(unflatten(reply["target"], self.shapes), int(reply["target_syncs"]),
                                    int(reply["last_sync_step"]))
        self.target_version = int(reply["target_version"])


class NodeGroup:
    """The Ray actor: `run` trains the group until the server says stop (or the budget is reached)."""

    def __init__(self, cfg: Config, group: int, first: int, count: int, template: torch.nn.Module,
                 server_name: str) -> None:
        # The server is found by name (not passed as a handle) so that Ray can restart
        # this actor from its plain constructor arguments alone.
        torch.set_num_threads(1)
        self.cfg, self.group, self.workers = cfg, group, range(first, first + count)
        self.template, self.server_name = template, server_name

    def run(self, incarnation: int) -> dict[str, Any]:
        """Train until stop; returns this incarnation's own env steps and exchanges."""
        import ray

        cfg = self.cfg
        if incarnation > 0:  # a restarted group must not replay the same episodes
            cfg = cfg.replace(seed=cfg.seed + incarnation * RESTART_SEED_STRIDE)
        server = ray.get_actor(self.server_name)

        def call(ref: Any) -> Any:
            return ray.get(ref, timeout=CALL_TIMEOUT_S)

        nice = normal_priority()  # before the workers start: they inherit it
        hello = call(server.hello.remote(self.group, incarnation, self.workers.start, len(self.workers), nice))
        shared = build_group_state(cfg, self.template, hello)
        backend = ProcessBackend(cfg, shared, self.workers, rerun_main=False)
        backend.start()
        link = GroupLink(shared, self.workers, hello, cfg.target_update_steps)
        episodes: list[EpisodeRecord] = []
        exchanges = 0

        def exchange(final: bool) -> None:
            nonlocal episodes, exchanges
            msg = link.message(episodes, backend.restarts.log, final)
            episodes = []
            link.apply(call(server.exchange.remote(self.group, incarnation, msg)))
            exchanges += 1

        try:
            last = time.monotonic()
            sync_s = max(cfg.ray_sync_seconds, SOLE_EXCHANGE_S) if link.owns_target else cfg.ray_sync_seconds
            while not link.stop and not backend.finished():
                if link.owns_target:  # no crossing to watch: wake 20 times a second, not at every episode
                    time.sleep(OWNER_POLL_S)
                    episodes.extend(backend.poll(timeout=0.0))
                else:  # no target network (--target-update-steps 0): no crossing to watch either
                    episodes.extend(backend.poll(timeout=POLL_S if cfg.target_update_steps else OWNER_POLL_S))
                now = time.monotonic()
                crossed = (not link.owns_target and shared.counter.value >= link.next_multiple()
                           and now >= last + MIN_EXCHANGE_S)
                if now >= last + sync_s or crossed:
                    exchange(final=False)
                    last = now
            backend.stop()  # every worker done: the last steps and updates travel with the final exchange
            exchange(final=True)
        finally:
            backend.stop()
        return {"steps": link.reported, "exchanges": exchanges}
