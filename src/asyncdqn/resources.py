"""Will a run fit this machine? Refuse, before anything starts, what would only thrash or hang.

`check_resources(cfg, obs_dim, n_actions)` raises ConfigError (exit 2 in the CLI),
naming the bound, when

* `--workers` exceeds the worker bound: at most 4 x the CPU cores (each worker is
  a whole process stepping and learning; more only time-slice the same cores),
  and at most what the available memory holds at ~250 MB resident per worker
  (measured: a spawn-started worker with torch imported, 2-core sandbox);
* `--envs-per-worker` exceeds MAX_ENVS_PER_WORKER;
* the estimated memory of the whole run exceeds the memory available now:

      4 bytes x params x (model + target + optimizer moments + per worker: gradients
                          and its local target copy)
      + workers x (worker base RSS + envs x bytes per env copy)
      + the replay buffer (dqn) + the trainer process.

The estimate is deliberately rough (it is there to refuse a network of a billion
parameters or a ten-million-transition buffer with a clear message, not to plan
memory to the byte).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

from asyncdqn.config import Config
from asyncdqn.errors import ConfigError

WORKERS_PER_CORE = 4
WORKER_RSS_BYTES = 250 * 2**20  # measured resident set of one worker process (torch imported)
TRAINER_RSS_BYTES = 500 * 2**20  # the trainer process: torch, gymnasium, matplotlib, evaluation envs
ENV_BYTES = 2**20  # per environment copy; measured 2-6 KiB (classic control), ~100 KiB (LunarLander-v3)
MAX_ENVS_PER_WORKER = 1024
FLOAT = 4


def available_memory() -> int:
    """Bytes of memory available to new processes now (Linux MemAvailable; else total physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 2**40  # unknown: do not refuse on memory


def mlp_params(obs_dim: int, n_actions: int, hidden_sizes: tuple[int, ...], layer_norm: bool = False) -> int:
    """Parameters of the MLP Q-network (weights and biases; with LayerNorm, a gain and a shift per hidden unit)."""
    widths = (obs_dim, *hidden_sizes, n_actions)
    return sum(a * b + b for a, b in itertools.pairwise(widths)) + (2 * sum(hidden_sizes) if layer_norm else 0)


@dataclass(frozen=True)
class Estimate:
    params: int
    network_bytes: int  # model, target, optimizer state, per-worker gradients and target copies
    worker_bytes: int  # worker processes and their environments
    buffer_bytes: int  # dqn replay buffer
    total_bytes: int


def network_params(cfg: Config, obs_shape: tuple[int, ...], n_actions: int) -> int:
    """Parameters of the run's Q-network: by formula for an MLP (no torch import), by building
    the (small, fixed-shape) conv nets otherwise."""
    from asyncdqn.model import BF16_NETWORKS, resolve_network

    try:
        kind = resolve_network(cfg.network, obs_shape)
        if cfg.precision == "bf16" and kind not in BF16_NETWORKS:
            raise ConfigError(f"precision: bf16 is for the Atari nets ({', '.join(BF16_NETWORKS)}: the torch engine); "
                              f"this run's {kind} net runs numpy or compiled float32 kernels")
        if kind == "mlp":
            return mlp_params(int(obs_shape[0]), n_actions, cfg.hidden_sizes, cfg.layer_norm)
        from asyncdqn.model import build_network

        net = build_network(cfg.network, obs_shape, n_actions, cfg.hidden_sizes, 0, cfg.layer_norm)
    except ValueError as exc:  # a network kind that does not fit the observations
        raise ConfigError(f"network: {exc}") from None
    return sum(p.numel() for p in net.parameters())


def estimate_memory(cfg: Config, obs_dim: int, n_actions: int, workers: int,
                    obs_shape: tuple[int, ...] | None = None) -> Estimate:
    shape = obs_shape or (obs_dim,)
    params = network_params(cfg, shape, n_actions)
    obs_bytes = obs_dim * (1 if len(shape) > 1 else FLOAT)  # images are kept as uint8
    moments = 2 if cfg.optimizer in ("adam", "radam") else 1
    copies = 2 + moments + 2 * workers  # model + target + moments + (grads + local target) per worker
    network = FLOAT * params * copies
    procs = workers if cfg.algo != "dqn" else 0  # dqn learns in the trainer process
    envs = procs * cfg.envs_per_worker if procs else cfg.envs_per_worker
    worker = procs * WORKER_RSS_BYTES + envs * ENV_BYTES
    buffer = 0
    if cfg.algo == "dqn":
        buffer = cfg.buffer_size * (2 * obs_bytes + 8 + FLOAT + 2)  # obs, next obs, action, reward, flags
    total = network + worker + buffer + TRAINER_RSS_BYTES
    return Estimate(params, network, worker, buffer, total)


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**28 else f"{n / 2**20:.0f} MB"


def worker_bound(cores: int, available: int) -> tuple[int, str]:
    """(most workers allowed, why) on a machine with `cores` CPUs and `available` bytes free."""
    by_cores = WORKERS_PER_CORE * cores
    by_memory = max(1, (available - TRAINER_RSS_BYTES) // WORKER_RSS_BYTES)
    if by_cores <= by_memory:
        return by_cores, (f"{WORKERS_PER_CORE} x {cores} CPU cores; memory would allow {by_memory} at "
                          f"~{WORKER_RSS_BYTES // 2**20} MB each")
    return int(by_memory), (f"{_gb(available)} available at ~{WORKER_RSS_BYTES // 2**20} MB per worker; "
                            f"the cores would allow {by_cores}")


def check_resources(cfg: Config, obs_dim: int, n_actions: int, cores: int | None = None,
                    available: int | None = None, obs_shape: tuple[int, ...] | None = None) -> Estimate:
    """ConfigError naming the bound if `cfg` cannot run here; else the memory estimate."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    available = available if available is not None else available_memory()
    workers = cfg.resolved_workers()
    remote = cfg.backend == "ray" and cfg.ray_address is not None  # a cluster's cores and memory, not ours
    if not remote and cfg.algo != "dqn":
        bound, why = worker_bound(cores, available)
        if workers > bound:
            raise ConfigError(f"workers: {workers} is above this machine's bound of {bound} ({why})")
    if cfg.envs_per_worker > MAX_ENVS_PER_WORKER:
        raise ConfigError(f"envs_per_worker: {cfg.envs_per_worker} is above the bound of {MAX_ENVS_PER_WORKER} "
                          "environments per worker (add workers instead)")
    est = estimate_memory(cfg, obs_dim, n_actions, 1 if remote else workers, obs_shape)
    if est.total_bytes > available:
        parts = [f"network {est.params:,} parameters x (model, target, optimizer, per-worker gradients) = "
                 f"{_gb(est.network_bytes)}", f"{workers} worker(s) with {cfg.envs_per_worker} env(s) each = "
                 f"{_gb(est.worker_bytes)}"]
        if est.buffer_bytes:
            parts.append(f"replay buffer of {cfg.buffer_size:,} transitions = {_gb(est.buffer_bytes)}")
        raise ConfigError(f"memory: this run needs about {_gb(est.total_bytes)} ({'; '.join(parts)}) but only "
                          f"{_gb(available)} is available; reduce --hidden-sizes, --workers, --envs-per-worker "
                          "or --buffer-size")
    return est
