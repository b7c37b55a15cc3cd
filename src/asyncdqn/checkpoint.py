"""Checkpoints: safetensors (tensors) + JSON metadata in one file, written atomically.

Loading never unpickles anything: safetensors holds raw tensors and a string map.
A checkpoint records the network's shape; loading into a different shape fails
with the list of mismatched keys and shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from asyncdqn.errors import CheckpointError, TrainingError
from asyncdqn.fileio import atomic_write_bytes

FORMAT = "asyncdqn-checkpoint-v1"
META_KEY = "asyncdqn"


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v.detach().clone().contiguous() for k, v in tensors.items()}


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write `tensors` and `meta`. Refuses non-finite tensors (a diverged model)."""
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise TrainingError(f"refusing to save checkpoint {path}: tensor {name!r} is not finite")
    data = st_save(tensors, metadata={META_KEY: json.dumps({"format": FORMAT, **meta})})
    return atomic_write_bytes(path, data)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint; CheckpointError for a missing, truncated or foreign file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get(META_KEY, "null"))
    except (SafetensorError, ValueError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"corrupt checkpoint {path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an asyncdqn checkpoint (format {FORMAT} expected)")
    return tensors, meta


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, source: str) -> None:
    """Copy `prefix`-ed tensors into `model`; CheckpointError listing every mismatch."""
    want = model.state_dict()
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
