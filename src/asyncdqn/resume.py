"""What `train --resume` may change, the config fingerprint, and metrics.csv repair.

A checkpoint stores a fingerprint of the configuration that shapes training (every
field except output options, stop rules and evaluation settings). A resumed run
must have the same fingerprint; only the RESUMABLE options may be given again with
other values.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from asyncdqn.config import Config
from asyncdqn.errors import ConfigError, RunDirError
from asyncdqn.fileio import atomic_write_bytes

# Options a resumed run may change: stop rules, evaluation and output.
RESUMABLE = ("max_steps", "max_seconds", "solve_score", "eval_every_steps", "eval_every_seconds", "eval_trigger",
             "eval_episodes", "screen_episodes",
             "solve_window", "checkpoint_every", "keep_checkpoints", "progress", "label", "tensorboard")
# Not part of the fingerprint: the above, where the run lives, and the resume counter.
_NOT_FINGERPRINTED = (*RESUMABLE, "run_dir", "runs_root", "resume_count", "resume_epsilons")
# Training options added after checkpoints existed, with the value that means "as before":
# at that value they stay out of the fingerprint, so older checkpoints keep matching.
_ADDED_LATER = {"lr_anneal_steps": None, "lr_end": 0.0, "average_steps": None, "vector": "gymnasium"}


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
    return saved in (fingerprint(cfg), _digest({**fingerprinted(cfg), "workers": 0}))


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


def truncate_metrics(path: Path, last_step: int) -> int:
    """Drop metrics rows logged after `last_step` (training a resume discards) and torn lines.

    Returns the number of rows dropped. The header stays; the file is replaced atomically.
    """
    try:
        with open(path, newline="") as f:
            text = f.read()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return 0
    header, body = rows[0], rows[1:]
    keep, width = [], len(header)
    for r in body:
        try:
            ok = len(r) == width and int(r[1]) <= last_step
        except ValueError:
            ok = False
        if ok:
            keep.append(r)
    dropped = len(body) - len(keep)
    if dropped or not text.endswith("\n"):
        out = io.StringIO(newline="")
        w = csv.writer(out)
        w.writerow(header)
        w.writerows(keep)
        try:
            atomic_write_bytes(path, out.getvalue().encode())
        except OSError as exc:
            raise RunDirError(f"cannot rewrite {path}: {exc.strerror}") from None
    return dropped
