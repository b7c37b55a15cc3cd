"""The run directory: its layout, config.json, and loading a finished run."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from asyncdqn.config import Config, from_dict
from asyncdqn.envs import EnvSpec
from asyncdqn.errors import ConfigError, RunDirError
from asyncdqn.rundir.fileio import atomic_write_json

CONFIG = "config.json"
METRICS = "metrics.csv"
CURVE = "learning_curve.png"
EVAL = "eval.json"
CHECKPOINTS = "checkpoints"
FINAL = "final.safetensors"
BEST = "best.safetensors"
LOCK = ".lock"
_EXTRA_KEYS = ("versions", "env_spec", "created", "resumes")


class RunLock:
    """An exclusive `flock` on RUN_DIR/.lock, held for a trainer's whole life.

    The kernel releases it when the process dies, even by SIGKILL, so a stale
    lock file never blocks a later `--resume`; only a live trainer does.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path) / LOCK
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"cannot create lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = self._holder()
            os.close(self._fd)
            self._fd = None
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirError(f"{path} is in use by another trainer{holder} (lock {self.path})") from None
            raise RunDirError(f"cannot lock {self.path}: {exc.strerror}") from None
        with contextlib.suppress(OSError):  # informational: who holds it
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


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


def create_locked_run_dir(cfg: Config, spec: EnvSpec) -> tuple[Path, RunLock]:
    """Make the run directory, take its lock, then write config.json; refuse a directory holding a run."""
    path = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    if (path / CONFIG).exists():
        raise RunDirError(f"{path} already holds a run (config.json exists); choose another --run-dir")
    try:
        (path / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create run directory {path}: {exc}") from None
    lock = RunLock(path)
    if (path / CONFIG).exists():  # another trainer created it meanwhile
        lock.release()
        raise RunDirError(f"{path} already holds a run (config.json exists); choose another --run-dir")
    try:
        resolved = cfg.replace(run_dir=str(path), workers=cfg.resolved_workers())
        atomic_write_json(path / CONFIG, {
            **resolved.to_dict(),
            "env_spec": {"obs_dim": spec.obs_dim, "n_actions": spec.n_actions,
                         "max_episode_steps": spec.max_episode_steps, "obs_shape": list(spec.shape)},
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
    except OSError as exc:
        lock.release()
        raise RunDirError(f"cannot create run directory {path}: {exc}") from None
    return path, lock


def record_resume(path: Path, cfg: Config, at_step: int, changed: dict[str, Any]) -> None:
    """Rewrite config.json with the options changed by a resume, and log the resume."""
    cfg_path = path / CONFIG
    try:
        raw = json.loads(cfg_path.read_text())
        raw.update(cfg.to_dict())
        raw["resumes"] = [*raw.get("resumes", []), {
            "at_step": at_step, "resume_count": cfg.resume_count, "changed": changed,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]
        atomic_write_json(cfg_path, raw)
    except (OSError, ValueError) as exc:
        raise RunDirError(f"cannot update {cfg_path}: {exc}") from None


@dataclass(frozen=True)
class Run:
    path: Path
    config: Config
    obs_dim: int
    n_actions: int
    obs_shape: tuple[int, ...] = ()  # () in runs written before images: (obs_dim,)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.obs_shape or (self.obs_dim,)

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
        return Run(path, cfg, int(spec["obs_dim"]), int(spec["n_actions"]),
                   tuple(int(n) for n in spec.get("obs_shape", ())))
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"invalid {path / CONFIG}: {exc}") from None

