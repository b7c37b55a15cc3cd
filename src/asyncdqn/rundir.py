"""The run directory: its layout, config.json, and loading a finished run."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from asyncdqn.config import Config, from_dict
from asyncdqn.envs import EnvSpec
from asyncdqn.errors import ConfigError, RunDirError
from asyncdqn.fileio import atomic_write_json

CONFIG = "config.json"
METRICS = "metrics.csv"
CURVE = "learning_curve.png"
EVAL = "eval.json"
CHECKPOINTS = "checkpoints"
FINAL = "final.safetensors"
BEST = "best.safetensors"
_EXTRA_KEYS = ("versions", "env_spec", "created")


def default_run_dir(cfg: Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.runs_root) / f"{cfg.env_id.replace('/', '_')}-{cfg.algo}-{stamp}"
    path, i = base, 1
    while path.exists():  # two runs in the same second
        path, i = Path(f"{base}-{i}"), i + 1
    return path


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("asyncdqn", "torch", "gymnasium", "numpy", "safetensors"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def create_run_dir(cfg: Config, spec: EnvSpec) -> Path:
    """Make the run directory and write config.json; refuse a directory holding a run."""
    path = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    if (path / CONFIG).exists():
        raise RunDirError(f"{path} already holds a run (config.json exists); choose another --run-dir")
    try:
        (path / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        resolved = cfg.replace(run_dir=str(path), workers=cfg.resolved_workers())
        atomic_write_json(path / CONFIG, {
            **resolved.to_dict(),
            "env_spec": {"obs_dim": spec.obs_dim, "n_actions": spec.n_actions,
                         "max_episode_steps": spec.max_episode_steps},
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
    except OSError as exc:
        raise RunDirError(f"cannot create run directory {path}: {exc}") from None
    return path


@dataclass(frozen=True)
class Run:
    path: Path
    config: Config
    obs_dim: int
    n_actions: int

    def checkpoint(self, which: str) -> Path:
        return self.path / CHECKPOINTS / (BEST if which == "best" else FINAL if which == "final" else which)


def load_run(path: str | Path) -> Run:
    """Read a run directory's config.json; RunDirError if it is not a run."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"run directory not found: {path}")
    try:
        raw = json.loads((path / CONFIG).read_text())
    except FileNotFoundError:
        raise RunDirError(f"{path} is not a run directory (no {CONFIG})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RunDirError(f"cannot read {path / CONFIG}: {exc}") from None
    if not isinstance(raw, dict):
        raise RunDirError(f"{path / CONFIG} is not a JSON object")
    spec = raw.get("env_spec") or {}
    try:
        cfg = from_dict({k: v for k, v in raw.items() if k not in _EXTRA_KEYS})
        return Run(path, cfg, int(spec["obs_dim"]), int(spec["n_actions"]))
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"invalid {path / CONFIG}: {exc}") from None

