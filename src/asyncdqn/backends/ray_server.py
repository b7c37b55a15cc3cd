"""The ray backend's parameter server: the one owner of the global weights, step count and target.

Plain Python (no Ray import): `RayBackend` turns it into an actor; tests drive it directly.

Node groups (see `ray_group.py`) train Hogwild on their own copy of the weights and
*exchange* with the server every --ray-sync-seconds (and whenever their view of the
global count crosses a multiple of --target-update-steps):

    group -> server: delta = (group weights now) - (weights the server last sent it),
                     the env steps its workers learned from since its previous exchange,
                     their per-worker counts, finished episodes, worker restarts,
                     its optimizer updates (and, every MOMENTS_EVERY_S, its optimizer moments)
    server:          master += delta; global count += steps; target sync if a multiple was crossed
    server -> group: the master weights (the group adds master - sent into its weights,
                     keeping what its workers learned meanwhile), the global count, the
                     target network if it changed, stop

What is exact (and what is not):
- the global step count is the sum of every env step whose update reached the master,
  each counted once (steps of a group lost before its exchange are not counted: their
  learning is lost with them);
- with one group (one node), the global count is that group's count and the group owns
  the target as the process backend does: the worker whose segment crosses a multiple of
  --target-update-steps copies the group's weights into the target there, and the group
  sends the target with its next exchange (the server keeps it for the driver and for a
  restarted group); the group exchanges every max(--ray-sync-seconds, 0.5 s) only;
- with several groups, target syncs are decided here, from the count alone: an exchange
  after which the count has crossed one or more multiples of --target-update-steps copies
  the master into the target (one copy, like a segment crossing a multiple in the local
  backends), and every group loads it at its next exchange. A group exchanges as soon as
  its own view of the count (last global count + its own steps since) crosses a multiple,
  so the copy is taken within the other groups' unsent steps (at most --ray-sync-seconds
  of them) of the multiple;
- the step budget (--max-steps) stops every group at its next exchange once the count
  reaches it, so a run overshoots it by at most --ray-sync-seconds of steps per group.

With --ray-compress bf16 both directions travel as bfloat16 (`algo/bf16.py`: 2 bytes a
parameter instead of 4), with error feedback on both sides, so no rounding error accumulates.
The server keeps, per group, `held`: what that group's base holds (its hello's float32 master
plus every bf16 value sent either way since); the group keeps the very same vector as its base
(the same float32 additions in the same order, so the two are bit for bit equal):

    group -> server: bf16(weights now - base); both sides add its decoded value to the base
                     (held). What the rounding left out stays in the group's weights, above its
                     base, so the next delta carries it: the group's own learning is never lost.
    server:          master += decoded delta
    server -> group: bf16(master - held); both sides add its decoded value to held (the base),
                     and the group adds it to its weights. What the rounding left out stays in
                     master - held, so the next reply carries it.

So a group's weights are the master plus its unsent learning, off by the rounding of the last
reply only (at most 2^-8 of each value of master - held, relative), never by the sum over
exchanges. A group's hello (a new incarnation too) is the float32 master and resets `held` to
it; target networks and optimizer moments always travel float32 (a target once per
--target-update-steps, the moments every MOMENTS_EVERY_S). The server holds one more float32
copy of the weights per group.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from asyncdqn.algo.bf16 import from_bf16, to_bf16
from asyncdqn.config import Config
from asyncdqn.episodes import EpisodeRecord


def normal_priority() -> int:
    """Take this process back to nice 0 where the OS permits it; returns the niceness now in force.

    Ray starts its worker processes at nice 15 (its `worker_niceness`), behind everything else on
    the node, and a group's Hogwild workers inherit it: beside any busy nice-0 process they starve
    (measured: a 2-worker Ray run beside a 2-worker local run made no env step in 45 s). Lowering
    a niceness needs root, CAP_SYS_NICE or RLIMIT_NICE; where none holds, the caller reports it
    (start the node with RAY_worker_niceness=0 instead: docs/ray.md)."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
    except PermissionError:
        pass
    return os.getpriority(os.PRIO_PROCESS, 0)


def flatten(arrays: list[np.ndarray]) -> np.ndarray:
    """One contiguous float32 vector (one buffer for Ray to ship, not one per layer)."""
    return np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])


def unflatten(vec: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    out, at = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        out.append(vec[at:at + n].reshape(shape))
        at += n
    return out


@dataclass
class ServerInit:
    """The state a run starts (or resumes) from: what the trainer holds when the backend starts."""

    weights: np.ndarray  # flat online weights
    target: np.ndarray  # flat target weights
    target_syncs: int
    last_sync_step: int
    optim: dict[str, np.ndarray]  # SharedAdam / SharedRMSprop state_tensors(), as arrays
    total: int  # global env steps so far
    per_worker: list[int]


@dataclass
class _Group:
    incarnation: int = -1  # the latest incarnation that said hello (-1: none yet)
    updates_retired: int = 0  # optimizer updates of its earlier incarnations
    updates: int = 0  # of the current incarnation
    moments: dict[str, np.ndarray] | None = None  # its optimizer moments, last reported
    exchanges: int = 0
    cpu_s: float = 0.0  # the group process's CPU time (without its workers), as last reported
    nice: int = 0  # the niceness its workers run at (normal_priority)
    held: np.ndarray | None = None  # --ray-compress bf16: the group's base, as both sides hold it


@dataclass
class Traffic:
    exchanges: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


class ParameterServer:
    """Owns the master weights, the target network, the global count. Ray runs one method at a time."""

    def __init__(self, cfg: Config, init: ServerInit, groups: int) -> None:
        """`groups`: how many node groups the run planned; a run's only group owns its target syncs."""
        self.cfg = cfg
        self.single = groups == 1
        self.bf16 = cfg.ray_compress == "bf16"
        # bf16 scratch, reused by every exchange (fresh large arrays page-fault in an actor's process)
        self._f32 = np.empty(init.weights.size if self.bf16 else 0, np.float32)
        self._u32 = np.empty(init.weights.size if self.bf16 else 0, np.uint32)
        self.master = init.weights.astype(np.float32).copy()
        self.master_version = 0  # bumped by every exchange that moves the master
        self.target = init.target.astype(np.float32).copy()
        self.target_version = 0  # bumped by every sync made here
        self.target_syncs = init.target_syncs
        self.last_sync_step = init.last_sync_step
        self.total = int(init.total)
        self.per_worker = [int(v) for v in init.per_worker]
        self.optim_step0 = int(init.optim["step"][0])
        self.optim_init = {k: v for k, v in init.optim.items() if k != "step"}
        self.optim_version = 0  # bumped when a group reports its moments
        self.groups: dict[int, _Group] = {}
        self.episodes: list[EpisodeRecord] = []
        self.restarts: list[dict[str, Any]] = []  # worker restarts inside the groups, not yet pulled
        self.stop_requested = False
        self.traffic = Traffic()
        self.cpu0 = time.process_time()
        self.nice = normal_priority()  # exchanges wait on this process: not behind the node's other work

    # ------------------------------------------------------------ helpers
    def _stop(self) -> bool:
        return self.stop_requested or (self.cfg.max_steps is not None and self.total >= self.cfg.max_steps)

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """The run's optimizer state: every group's moments averaged, and the updates of all groups
        (so the step count equals the optimizer updates of the whole run, as in the local backends)."""
        reported = [g.moments for g in self.groups.values() if g.moments is not None]
        moments = ({k: np.mean([m[k] for m in reported], axis=0).astype(np.float32) for k in reported[0]}
                   if reported else dict(self.optim_init))
        return {"step": np.array([self.optim_step0 + self._updates()], dtype=np.int64), **moments}

    def _updates(self) -> int:
        """Optimizer updates made by every group of the run (restarted incarnations included)."""
        return sum(g.updates_retired + g.updates for g in self.groups.values())

    # ----------------------------------------------------------- groups
    def hello(self, group: int, incarnation: int, first: int, count: int, nice: int = 0) -> dict[str, Any]:
        """A group (re)starting: everything it needs to build its local training state."""
        g = self.groups.setdefault(group, _Group())
        g.nice = nice
        if incarnation > g.incarnation:
            g.updates_retired += g.updates
            g.updates = 0
        g.incarnation = incarnation
        if self.bf16:  # the group starts from the float32 master: its base
            g.held = self.master.copy()
        return {"weights": self.master.copy(), "target": self.target.copy(), "target_version": self.target_version,
                "target_syncs": self.target_syncs, "last_sync_step": self.last_sync_step,
                "step": self.total, "per_worker": self.per_worker[first:first + count],
                "optim": self.optimizer_state(), "stop": self._stop(), "owns_target": self.single,
                "compress": self.cfg.ray_compress}

    def exchange(self, group: int, incarnation: int, msg: dict[str, Any]) -> dict[str, Any]:
        """Apply one group's delta and counts; reply with the master (and the target if it changed).

        --ray-compress bf16: the delta arrives as bf16 ("delta_bf16") and the reply carries bf16 of
        (master - what the group holds) ("update_bf16") instead of the master (see the module doc)."""
        g = self.groups.get(group)
        if g is None or incarnation != g.incarnation:  # a superseded incarnation: ignore it, stop it
            return {"stop": True, "stale": True}
        if self.bf16:
            assert g.held is not None  # set by its hello
            sent: np.ndarray = msg["delta_bf16"]
            delta = from_bf16(sent, out=self._f32)
            g.held += delta  # the group adds the same to its base
        else:
            sent = msg["delta"]
            delta = sent
        self.master += delta
        self.master_version += 1
        old = self.total
        self.total += int(msg["steps"])
        first = int(msg["first"])
        for i, v in enumerate(msg["per_worker"]):
            self.per_worker[first + i] = int(v)
        n = self.cfg.target_update_steps
        if self.single:  # the only group syncs its target itself, exactly at the multiples
            if "target" in msg:
                np.copyto(self.target, msg["target"])
                self.target_version += 1
                self.target_syncs = int(msg["target_syncs"])
                self.last_sync_step = int(msg["last_sync_step"])
        elif n and self.total // n > old // n:  # one copy per exchange that crosses a multiple (0: no target net)
            np.copyto(self.target, self.master)
            self.target_version += 1
            self.target_syncs += 1
            self.last_sync_step = self.total
        self.episodes.extend(msg["episodes"])
        self.restarts.extend(msg["restarts"])
        g.updates = int(msg["updates"])
        if msg.get("moments") is not None:
            g.moments = {k: v for k, v in msg["moments"].items() if k != "step"}  # the count is `updates`
            self.optim_version += 1
        g.exchanges += 1
        g.cpu_s = float(msg.get("cpu_s", 0.0))
        reply: dict[str, Any] = {"step": self.total, "stop": self._stop(), "target_version": self.target_version}
        if g.held is not None:
            update = to_bf16(np.subtract(self.master, g.held, out=self._f32), work=self._u32)
            g.held += from_bf16(update, out=self._f32)  # the group adds the same to its base and its weights
            reply["update_bf16"] = update
            weights_out = update.nbytes
        else:
            reply["weights"] = self.master.copy()
            weights_out = self.master.nbytes
        if not self.single and int(msg["target_version"]) != self.target_version:
            reply.update(target=self.target.copy(), target_syncs=self.target_syncs,
                         last_sync_step=self.last_sync_step)
        t = self.traffic
        t.exchanges += 1
        t.bytes_in += (sent.nbytes + sum(v.nbytes for v in (msg.get("moments") or {}).values())
                       + (msg["target"].nbytes if "target" in msg else 0))
        t.bytes_out += weights_out + (self.target.nbytes if "target" in reply else 0)
        return reply

    def started(self, group: int) -> int:
        """The latest incarnation of `group` that said hello (-1: none yet)."""
        g = self.groups.get(group)
        return -1 if g is None else g.incarnation

    # ----------------------------------------------------------- driver
    def state(self, target_version: int, optim_version: int, master_version: int = -1,
              full: bool = True) -> dict[str, Any]:
        """What the driver mirrors: counters, new episodes and restarts, and (`full`) the master weights,
        the target and the optimizer state when they changed since the versions it holds. The driver
        polls five times a second but reads the weights only for an evaluation or a checkpoint (and
        every few seconds): most polls ask for counts only (full=False)."""
        episodes, self.episodes = self.episodes, []
        restarts, self.restarts = self.restarts, []
        out: dict[str, Any] = {"total": self.total, "per_worker": list(self.per_worker), "episodes": episodes,
                               "restarts": restarts, "master_version": self.master_version,
                               "target_version": self.target_version, "optim_version": self.optim_version,
                               "stats": self.stats()}
        if not full:
            return out
        if master_version != self.master_version:
            out["weights"] = self.master.copy()
        if target_version != self.target_version:
            out.update(target=self.target.copy(), target_syncs=self.target_syncs,
                       last_sync_step=self.last_sync_step)
        if optim_version != self.optim_version:
            out["optim"] = self.optimizer_state()
        return out

    def stats(self) -> dict[str, Any]:
        t = self.traffic
        return {"groups": len(self.groups), "exchanges": t.exchanges, "compress": self.cfg.ray_compress,
                "exchanges_per_group": {str(k): g.exchanges for k, g in sorted(self.groups.items())},
                "bytes_in": t.bytes_in, "bytes_out": t.bytes_out,
                "bytes_per_exchange": (t.bytes_in + t.bytes_out) / t.exchanges if t.exchanges else 0.0,
                "target_syncs": self.target_syncs,
                # CPU seconds of the server's and each group's process (workers excluded): exchange costs
                "server_cpu_s": time.process_time() - self.cpu0,
                "group_cpu_s": {str(k): g.cpu_s for k, g in sorted(self.groups.items())},
                # niceness of the server's process and of each group's workers (0 unless the OS refused)
                "server_nice": self.nice, "group_nice": {str(k): g.nice for k, g in sorted(self.groups.items())},
                "optimizer_updates": self._updates()}

    def request_stop(self) -> None:
        self.stop_requested = True

    def ping(self) -> bool:
        return True
