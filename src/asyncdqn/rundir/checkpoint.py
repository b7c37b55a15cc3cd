"""Checkpoints: safetensors (tensors) + JSON metadata in one file, written atomically.

Loading never unpickles anything: safetensors holds raw tensors and a string map.
A checkpoint records the network's shape; loading into a different shape fails
with the list of mismatched keys and shapes.

`CheckpointStore` keeps the rotating training checkpoints of a run directory:

    checkpoints/ckpt-000000250000.safetensors   full training state at env step 250,000
    checkpoints/manifest.json                    newest last: file, step, bytes, sha256

A checkpoint file is written completely (temp file, fsync, rename, fsync of the
directory) before the manifest that names it is atomically replaced, so a crash at
any moment leaves a manifest naming only complete files. Loading verifies each
file's sha256 against the manifest and falls back to older entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from asyncdqn.errors import CheckpointError, TrainingError
from asyncdqn.rundir.fileio import atomic_write_bytes, atomic_write_json

FORMAT = "asyncdqn-checkpoint-v1"
MANIFEST_FORMAT = "asyncdqn-manifest-v1"
META_KEY = "asyncdqn"
MANIFEST = "manifest.json"
_CKPT_RE = re.compile(r"^ckpt-(\d{12})\.safetensors$")


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v.detach().clone().contiguous() for k, v in tensors.items()}


def encode_checkpoint(tensors: dict[str, torch.Tensor], meta: dict[str, Any], name: str = "checkpoint") -> bytes:
    """The file's bytes. Refuses non-finite tensors (a diverged model): TrainingError."""
    for key, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise TrainingError(f"refusing to save checkpoint {name}: tensor {key!r} is not finite")
    return st_save(tensors, metadata={META_KEY: json.dumps({"format": FORMAT, **meta})})


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write `tensors` and `meta`. Refuses non-finite tensors (a diverged model)."""
    return atomic_write_bytes(path, encode_checkpoint(tensors, meta, str(path)))


def decode_checkpoint(data: bytes, source: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Parse checkpoint bytes; CheckpointError for truncated or foreign data."""
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get(META_KEY, "null"))
    except (SafetensorError, ValueError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise CheckpointError(f"corrupt checkpoint {source}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not an asyncdqn checkpoint (format {FORMAT} expected)")
    return tensors, meta


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint; CheckpointError for a missing, truncated or foreign file."""
    path = Path(path)
    return decode_checkpoint(_read(path), path)


# Tensor name prefixes: the online network (also the policy of best.safetensors) and,
# with --average-steps, the Polyak-averaged weights that a run evaluates and returns.
MODEL = "model."
AVERAGE = "average."


def policy_prefix(tensors: dict[str, torch.Tensor]) -> str:
    """Prefix of the policy a checkpoint hands its user: the averaged weights if it has them."""
    return AVERAGE if any(k.startswith(AVERAGE) for k in tensors) else MODEL


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, source: str) -> None:
    """Copy `prefix`-ed tensors into `model`; CheckpointError listing every mismatch."""
    load_state(model.state_dict(), tensors, prefix, source)


def load_state(want: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], prefix: str, source: str) -> None:
    """Copy `prefix`-ed tensors into the tensors of `want` (in place); CheckpointError listing every mismatch."""
    have = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    problems = [f"missing {k}" for k in want if k not in have]
    problems += [f"unexpected {k}" for k in have if k not in want]
    problems += [
        f"{k}: checkpoint {tuple(have[k].shape)} vs model {tuple(v.shape)}"
        for k, v in want.items() if k in have and have[k].shape != v.shape
    ]
    if problems:
        raise CheckpointError(f"{source} does not match the model: " + "; ".join(problems))
    with torch.no_grad():
        for k, v in want.items():
            v.copy_(have[k])


# ------------------------------------------------------------- rotation


@dataclass(frozen=True)
class Loaded:
    path: Path
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    skipped: list[str]  # "<file>: <why>" for every newer checkpoint that failed verification


def checkpoint_name(step: int) -> str:
    return f"ckpt-{step:012d}.safetensors"


class CheckpointStore:
    """The last `keep` training checkpoints of a run and their manifest."""

    def __init__(self, directory: str | Path, keep: int = 3) -> None:
        self.dir = Path(directory)
        self.keep = max(1, keep)

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    def entries(self) -> list[dict[str, Any]]:
        """Manifest entries, oldest first. CheckpointError if the manifest is unreadable."""
        try:
            raw = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"unreadable manifest {self.manifest_path}: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
            raise CheckpointError(f"{self.manifest_path} is not an asyncdqn manifest")
        items = raw.get("checkpoints")
        if not isinstance(items, list):
            raise CheckpointError(f"{self.manifest_path} is not an asyncdqn manifest")
        return [e for e in items if isinstance(e, dict) and _CKPT_RE.match(str(e.get("file", "")))]

    def save(self, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
        """Write checkpoint `step`, then the manifest, then drop checkpoints beyond `keep`.

        TrainingError for non-finite tensors, OSError if the disk refuses; in both
        cases the earlier checkpoints and the manifest are untouched.
        """
        name = checkpoint_name(step)
        data = encode_checkpoint(tensors, {**meta, "step": step}, str(self.dir / name))
        digest = hashlib.sha256(data).hexdigest()
        path = atomic_write_bytes(self.dir / name, data)
        try:
            old = self.entries()
        except CheckpointError:
            old = []  # a damaged manifest is replaced by a fresh one
        kept = [e for e in old if e["file"] != name] + [{"file": name, "step": step, "bytes": len(data),
                                                         "sha256": digest}]
        kept = kept[-self.keep:]
        atomic_write_json(self.manifest_path, {"format": MANIFEST_FORMAT, "checkpoints": kept})
        self._prune({e["file"] for e in kept})
        return path

    def _prune(self, keep: set[str]) -> None:
        """Delete checkpoint files the manifest no longer names, and temp files of killed writes (of a
        checkpoint, the manifest, best or final: this process writes them one at a time, in this thread)."""
        for p in self.dir.iterdir():
            stray_tmp = p.name.startswith(".") and p.name.endswith(".tmp")
            if (_CKPT_RE.match(p.name) and p.name not in keep) or stray_tmp:
                with contextlib.suppress(OSError):
                    p.unlink()

    def latest(self) -> Loaded:
        """The newest checkpoint whose digest and content verify; older ones are fallbacks.

        Without a usable manifest, complete-looking `ckpt-*.safetensors` files are tried
        newest first (a file only gets its final name once fully written).
        CheckpointError if none verifies.
        """
        skipped: list[str] = []
        try:
            entries: list[dict[str, Any]] | None = self.entries()
        except CheckpointError as exc:
            skipped.append(str(exc))
            entries = None
        if entries is None or not entries:
            files = sorted(p.name for p in self.dir.glob("ckpt-*.safetensors") if _CKPT_RE.match(p.name))
            entries = [{"file": f} for f in files]
        for entry in reversed(entries):
            path = self.dir / entry["file"]
            try:
                data = _read(path)
                want = entry.get("sha256")
                if want is not None and hashlib.sha256(data).hexdigest() != want:
                    raise CheckpointError(f"{path}: sha256 does not match {MANIFEST} (damaged or incomplete file)")
                tensors, meta = decode_checkpoint(data, path)
            except CheckpointError as exc:
                skipped.append(str(exc))
                print(f"asyncdqn: warning: skipping checkpoint: {exc}", file=sys.stderr)
                continue
            return Loaded(path, tensors, meta, skipped)
        why = ("; ".join(skipped)) if skipped else "none written yet"
        raise CheckpointError(f"no valid checkpoint in {self.dir}: {why}")
