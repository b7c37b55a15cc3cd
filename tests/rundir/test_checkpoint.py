"""Tests for asyncdqn.rundir.checkpoint (and the atomic writes of asyncdqn.rundir.fileio it relies on)."""

from __future__ import annotations

import os
import pickle
import re
import shlex
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from asyncdqn.errors import CheckpointError, TrainingError
from asyncdqn.model import QNetwork, build_model
from asyncdqn.rundir import fileio
from asyncdqn.rundir.checkpoint import (
    FORMAT,
    load_checkpoint,
    load_weights,
    prefixed,
    save_checkpoint,
)


def _tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "model.q.0.weight": torch.randn(8, 4, generator=g),
        "model.q.0.bias": torch.randn(8, generator=g),
        "optim.step": torch.tensor([7], dtype=torch.int64),
        "optim.exp_avg": torch.randn(3, 2, dtype=torch.float64, generator=g),
    }


META = {"env_id": "CartPole-v1", "obs_dim": 4, "n_actions": 2, "hidden_sizes": [8], "step": 123,
        "eval": {"mean": 9.5, "std": 0.5}, "per_worker_steps": [60, 63]}


def _leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


# --------------------------------------------------------------- round trip


def test_save_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ckpt" / "final.safetensors"  # parent created on demand
    tensors = _tensors()
    returned = save_checkpoint(path, tensors, META)
    assert Path(returned) == path and path.is_file()
    loaded, meta = load_checkpoint(path)
    assert set(loaded) == set(tensors)
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype, k
        assert loaded[k].shape == v.shape, k
        assert torch.equal(loaded[k], v), k
    assert meta["format"] == FORMAT
    assert {k: v for k, v in meta.items() if k != "format"} == META
    assert _leftovers(path.parent, {path.name}) == []


def test_model_weights_round_trip_via_prefix(tmp_path: Path) -> None:
    src = build_model(4, 2, (16, 16), seed=1)
    dst = build_model(4, 2, (16, 16), seed=2)
    assert not all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values(), strict=True))
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, {**prefixed("model.", src.state_dict()), **prefixed("target.", dst.state_dict())}, {})
    tensors, _ = load_checkpoint(path)
    load_weights(dst, tensors, "model.", str(path))
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_save_overwrites_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, _tensors(0), {"step": 1})
    save_checkpoint(path, _tensors(1), {"step": 2})
    loaded, meta = load_checkpoint(path)
    assert meta["step"] == 2
    assert torch.equal(loaded["model.q.0.weight"], _tensors(1)["model.q.0.weight"])
    assert _leftovers(tmp_path, {path.name}) == []


# ------------------------------------------------------------ atomic writes


def _assert_previous_intact(path: Path, old_bytes: bytes) -> None:
    assert path.read_bytes() == old_bytes
    loaded, meta = load_checkpoint(path)
    assert meta["step"] == 1
    assert torch.equal(loaded["model.q.0.weight"], _tensors(0)["model.q.0.weight"])
    assert _leftovers(path.parent, {path.name}) == [], "temporary file left behind"


@pytest.mark.parametrize("failing", ["os.replace", "os.fsync"])
def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    path = tmp_path / "final.safetensors"
    save_checkpoint(path, _tensors(0), {"step": 1})
    old = path.read_bytes()
    calls = []

    def boom(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise OSError("disk on fire")

    monkeypatch.setattr(fileio.os, failing.split(".")[1], boom)
    with pytest.raises(OSError, match="disk on fire"):
        save_checkpoint(path, _tensors(1), {"step": 2})
    monkeypatch.undo()
    assert calls, "the patched function was never reached"
    _assert_previous_intact(path, old)


def test_write_failing_midway_keeps_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "final.safetensors"
    save_checkpoint(path, _tensors(0), {"step": 1})
    old = path.read_bytes()

    def half_then_fail(f) -> None:  # type: ignore[no-untyped-def]
        f.write(b"\0" * 100)
        f.flush()
        raise KeyboardInterrupt  # even a BaseException must not leave debris

    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write(path, half_then_fail)
    _assert_previous_intact(path, old)


def test_refuses_non_finite_tensors_and_keeps_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "final.safetensors"
    save_checkpoint(path, _tensors(0), {"step": 1})
    old = path.read_bytes()
    for bad in (float("nan"), float("inf"), float("-inf")):
        tensors = _tensors(1)
        tensors["model.q.0.bias"][3] = bad
        with pytest.raises(TrainingError, match="model.q.0.bias"):
            save_checkpoint(path, tensors, {"step": 2})
        _assert_previous_intact(path, old)


def test_refuses_non_finite_into_new_file(tmp_path: Path) -> None:
    path = tmp_path / "new.safetensors"
    with pytest.raises(TrainingError):
        save_checkpoint(path, {"w": torch.tensor([1.0, float("nan")])}, {})
    assert not path.exists()
    assert _leftovers(tmp_path, set()) == []


# -------------------------------------------------------------- load errors


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.safetensors"
    with pytest.raises(CheckpointError, match="not found") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)


@pytest.fixture
def valid_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "valid.safetensors"
    save_checkpoint(path, _tensors(), META)
    return path.read_bytes()


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.25, 0.5, 0.9])
def test_load_truncated_file(tmp_path: Path, valid_bytes: bytes, fraction: float) -> None:
    path = tmp_path / "best.safetensors"
    cut = int(len(valid_bytes) * fraction)
    path.write_bytes(valid_bytes[:cut])
    with pytest.raises(CheckpointError, match="corrupt checkpoint") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_load_one_byte_short(tmp_path: Path, valid_bytes: bytes) -> None:
    path = tmp_path / "best.safetensors"
    path.write_bytes(valid_bytes[:-1])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


@pytest.mark.parametrize("seed", range(5))
def test_load_random_bytes(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "best.safetensors"
    g = torch.Generator().manual_seed(seed)
    path.write_bytes(bytes(torch.randint(0, 256, (4096,), generator=g, dtype=torch.uint8).tolist()))
    with pytest.raises(CheckpointError, match="corrupt checkpoint"):
        load_checkpoint(path)


def test_load_safetensors_without_our_metadata(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2, 2)}, str(path))
    with pytest.raises(CheckpointError, match="not an asyncdqn checkpoint"):
        load_checkpoint(path)
    # foreign metadata, or ours with a wrong format tag
    save_file({"w": torch.zeros(2, 2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not an asyncdqn checkpoint"):
        load_checkpoint(path)
    save_file({"w": torch.zeros(2, 2)}, str(path), metadata={"asyncdqn": '{"format": "other-v9"}'})
    with pytest.raises(CheckpointError, match="not an asyncdqn checkpoint"):
        load_checkpoint(path)
    save_file({"w": torch.zeros(2, 2)}, str(path), metadata={"asyncdqn": "{not json"})
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    save_file({"w": torch.zeros(2, 2)}, str(path), metadata={"asyncdqn": '["asyncdqn-checkpoint-v1"]'})
    with pytest.raises(CheckpointError, match="not an asyncdqn checkpoint"):
        load_checkpoint(path)


class _Exploit:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def test_payload_sanity(tmp_path: Path) -> None:
    # Proves the payload used below really executes when unpickled.
    marker = tmp_path / "pwned-sanity"
    pickle.loads(pickle.dumps(_Exploit(marker)))
    assert marker.exists()


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_load_pickle_never_unpickles(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoints" / "best.safetensors"
    path.parent.mkdir()
    if writer == "pickle":
        path.write_bytes(pickle.dumps(_Exploit(marker)))
    else:
        torch.save({"model.q.0.weight": torch.zeros(2), "x": _Exploit(marker)}, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists(), "loading a checkpoint executed pickled code"


# ------------------------------------------------------------- load_weights


def test_load_weights_shape_mismatch_lists_keys_and_shapes(tmp_path: Path) -> None:
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, prefixed("model.", QNetwork(4, 2, (64, 64)).state_dict()), {})
    tensors, _ = load_checkpoint(path)
    model = QNetwork(4, 2, (32, 32))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_weights(model, tensors, "model.", str(path))
    msg = str(info.value)
    assert str(path) in msg
    # each mismatched key with both shapes
    for key, ckpt_shape, model_shape in [
        ("q.0.weight", (64, 4), (32, 4)),
        ("q.0.bias", (64,), (32,)),
        ("q.2.weight", (64, 64), (32, 32)),
        ("q.4.weight", (2, 64), (2, 32)),
    ]:
        assert re.search(rf"{re.escape(key)}: checkpoint {re.escape(str(ckpt_shape))} vs model "
                         rf"{re.escape(str(model_shape))}", msg), (key, msg)
    assert "q.4.bias" not in msg  # (2,) matches
    # the model was left untouched (no partial copy)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_load_weights_missing_and_unexpected_keys(tmp_path: Path) -> None:
    ckpt_model = QNetwork(4, 2, (8,))  # q.0, q.2
    deeper = QNetwork(4, 2, (8, 8))  # q.0, q.2, q.4
    tensors = prefixed("model.", ckpt_model.state_dict())
    tensors["model.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_weights(deeper, tensors, "model.", "ckpt")
    msg = str(info.value)
    assert "missing q.4.weight" in msg and "missing q.4.bias" in msg
    assert "unexpected extra.weight" in msg
    assert "q.2.weight: checkpoint (2, 8) vs model (8, 8)" in msg


def test_load_weights_wrong_prefix_lists_every_key_missing() -> None:
    model = QNetwork(4, 2, (8,))
    tensors = prefixed("target.", model.state_dict())
    with pytest.raises(CheckpointError) as info:
        load_weights(model, tensors, "model.", "ckpt")
    for k in model.state_dict():
        assert f"missing {k}" in str(info.value)
