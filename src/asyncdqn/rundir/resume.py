"""Continuing a run: what `train --resume` may change, the config fingerprint, and the checks
that a checkpoint belongs to the run (`plan_resume`, `check_fingerprint`).

A checkpoint stores a fingerprint of the configuration that shapes training (every
field except output options, stop rules and evaluation settings). A resumed run
must have the same fingerprint; only the RESUMABLE options may be given again with
other values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from asyncdqn.config import RETIRED, Config
from asyncdqn.errors import CheckpointError, ConfigError
from asyncdqn.rundir.checkpoint import Loaded as LoadedCheckpoint
from asyncdqn.rundir.layout import CONFIG, Run

# Options a resumed run may change: stop rules, evaluation and output.
RESUMABLE = ("max_steps", "max_seconds", "solve_score", "eval_every_steps", "eval_every_seconds", "eval_trigger",
             "eval_episodes", "screen_episodes", "final_eval_seconds", "eval_episode_seconds",
             "solve_window", "checkpoint_every", "keep_checkpoints", "progress", "label", "tensorboard",
             "start_timeout", "eval_epsilon")
# Not part of the fingerprint: the above, where the run lives, and the resume counter.
_NOT_FINGERPRINTED = (*RESUMABLE, "run_dir", "runs_root", "resume_count", "resume_epsilons")
# Training options added after checkpoints existed, with the value that means "as before":
# at that value they stay out of the fingerprint, so older checkpoints keep matching.
_ADDED_LATER = {"lr_anneal_steps": None, "lr_end": 0.0, "average_steps": None, "env_kwargs": None, "network": "auto",
                "ray_sync_seconds": 0.1, "vector": "gymnasium",
                "returns": "nstep", "lam": 0.65, "epochs": 1, "minibatches": 1,
                "layer_norm": False, "ray_compress": "none", "lambda_values": "learn",
                "precision": "fp32"}


def fingerprinted(cfg: Config) -> dict[str, Any]:
    """The configuration fields that shape training (the fingerprint's input).

    `workers` counts as resolved: --workers 0 (one per core) is stored in config.json
    as the number it meant, and a checkpoint of that run must match it."""
    d = {**cfg.to_dict(), "workers": cfg.resolved_workers()}
    return {k: v for k, v in sorted(d.items())
            if k not in _NOT_FINGERPRINTED and not (k in _ADDED_LATER and v == _ADDED_LATER[k])}


def _digest(fields: dict[str, Any]) -> str:
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def fingerprint(cfg: Config) -> str:
    return _digest(fingerprinted(cfg))


def matches_fingerprint(saved: str | None, cfg: Config) -> bool:
    """Does a checkpoint's fingerprint belong to `cfg`? Checkpoints written before
    `workers` counted as resolved recorded --workers 0 (one per core) as 0."""
    now = fingerprinted(cfg)
    retired = {**now, **RETIRED}  # written while the retired options still existed
    return saved in (_digest(now), _digest({**now, "workers": 0}), _digest(retired), _digest({**retired, "workers": 0}))


def fingerprint_diff(saved: dict[str, Any], cfg: Config) -> list[str]:
    """'field: checkpoint X vs config Y' for every fingerprinted field that differs."""
    now = fingerprinted(cfg)
    return [f"{k}: checkpoint {saved.get(k)!r} vs config.json {now.get(k)!r}"
            for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]


def resume_config(saved: Config, overrides: dict[str, Any], resume_count: int,
                  epsilons: tuple[float, ...] = ()) -> tuple[Config, dict[str, Any]]:
    """The resumed run's config: config.json plus allowed overrides. Returns (config, changed).

    `epsilons`: each worker's last epsilon (episode-decay schedule only)."""
    current = saved.to_dict()
    changed: dict[str, Any] = {}
    refused: list[str] = []
    for k, v in overrides.items():
        v = list(v) if isinstance(v, tuple) else v
        if current.get(k) == v or k == "run_dir":
            continue
        if k in RESUMABLE:
            changed[k] = v
        else:
            refused.append("--" + k.replace("_", "-"))
    if refused:
        allowed = ", ".join("--" + k.replace("_", "-") for k in RESUMABLE)
        raise ConfigError(f"{', '.join(refused)} cannot change when resuming (the run's config.json fixes it); "
                          f"only these may: {allowed}")
    eps = epsilons if saved.eps_schedule == "episode-decay" else ()
    return saved.replace(**changed, resume_count=resume_count, resume_epsilons=list(eps)), changed




@dataclass(frozen=True)
class ResumePlan:
    """What a resume continues from, checked: the resumed config and the checkpoint's counters."""

    cfg: Config
    changed: dict[str, Any]  # the options this resume changed (recorded in config.json)
    step: int  # global env step of the checkpoint
    per_worker: list[int]  # each worker's env steps at the checkpoint
    wall_s: float  # training seconds of the run so far
    trainer_state: dict[str, Any]  # eval round, best evaluation, solve window


def plan_resume(run: Run, loaded: LoadedCheckpoint, overrides: dict[str, Any]) -> ResumePlan:
    """Check that `loaded` belongs to `run` and that `overrides` may continue it.

    Raises CheckpointError (another run's checkpoint, wrong worker count) or ConfigError
    (a fixed option changed, or a step/time limit the run has already passed)."""
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
    per_worker = [int(v) for v in meta.get("per_worker_steps", [])]
    if len(per_worker) != cfg.resolved_workers():
        raise CheckpointError(f"{src} holds counters of {len(per_worker)} workers; the run has "
                              f"{cfg.resolved_workers()}")
    return ResumePlan(cfg, changed, step, per_worker, wall, trainer_state)


def check_fingerprint(loaded: LoadedCheckpoint, run: Run) -> None:
    """Shapes matched; anything else that shapes training must match too (CheckpointError naming fields)."""
    if not matches_fingerprint(loaded.meta.get("fingerprint"), run.config):
        diff = fingerprint_diff(loaded.meta.get("config") or {}, run.config) or ["no fingerprint in checkpoint"]
        raise CheckpointError(f"{run.path / CONFIG} differs from the configuration of {loaded.path}: "
                              + "; ".join(diff))
