"""CheckpointStore: rotation, manifest digests, fallbacks when files are damaged or half-written."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from asyncdqn.errors import CheckpointError, TrainingError
from asyncdqn.rundir import checkpoint as ck
from asyncdqn.rundir import fileio
from asyncdqn.rundir.checkpoint import CheckpointStore, checkpoint_name, load_checkpoint


def _tensors(step: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return {"model.w": torch.randn(16, 4, generator=g), "optim.step": torch.tensor([step], dtype=torch.int64)}


def _fill(store: CheckpointStore, steps: list[int]) -> None:
    for s in steps:
        store.save(s, _tensors(s), {"note": f"at {s}"})


def _manifest(d: Path) -> list[dict]:
    return json.loads((d / "manifest.json").read_text())["checkpoints"]


def _files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_keeps_the_last_k_with_matching_digests(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    _fill(store, [100, 200, 300, 400, 500])
    entries = _manifest(tmp_path)
    assert [e["step"] for e in entries] == [300, 400, 500]
    assert _files(tmp_path) == [checkpoint_name(s) for s in (300, 400, 500)] + ["manifest.json"]
    for e in entries:
        data = (tmp_path / e["file"]).read_bytes()
        assert e["sha256"] == hashlib.sha256(data).hexdigest() and e["bytes"] == len(data)
    loaded = store.latest()
    assert loaded.path.name == checkpoint_name(500) and loaded.meta["step"] == 500 and loaded.skipped == []
    assert torch.equal(loaded.tensors["model.w"], _tensors(500)["model.w"])


def test_digest_mismatch_falls_back_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    _fill(store, [100, 200, 300])
    newest = tmp_path / checkpoint_name(300)
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the tensor data: still parses, digest differs
    newest.write_bytes(bytes(data))
    load_checkpoint(newest)  # safetensors alone would accept it
    loaded = store.latest()
    assert loaded.meta["step"] == 200
    assert len(loaded.skipped) == 1 and "sha256 does not match" in loaded.skipped[0]
    err = capsys.readouterr().err
    assert "warning: skipping checkpoint" in err and str(newest) in err


def test_half_written_files_are_never_picked_and_get_pruned(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    _fill(store, [100, 200])
    good = (tmp_path / checkpoint_name(200)).read_bytes()
    # A trainer killed mid-write leaves a temp file; one killed between the rename of the
    # file and the manifest's replacement leaves a file the manifest does not name.
    (tmp_path / f".{checkpoint_name(300)}.x1y2.tmp").write_bytes(good[: len(good) // 2])
    (tmp_path / ".manifest.json.k1ll.tmp").write_text('{"format"')  # killed while replacing the manifest
    (tmp_path / ".best.safetensors.k1ll.tmp").write_bytes(good[:10])  # ... or best.safetensors
    (tmp_path / checkpoint_name(400)).write_bytes(good[:100])
    assert store.latest().meta["step"] == 200
    store.save(500, _tensors(500), {})
    assert _files(tmp_path) == [checkpoint_name(s) for s in (100, 200, 500)] + ["manifest.json"]


def test_manifest_written_only_after_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    _fill(store, [100])
    before = (tmp_path / "manifest.json").read_bytes()

    def die(*a: object, **k: object) -> None:
        raise KeyboardInterrupt  # killed between the checkpoint file and its manifest

    monkeypatch.setattr(ck, "atomic_write_json", die)
    with pytest.raises(KeyboardInterrupt):
        store.save(200, _tensors(200), {})
    monkeypatch.undo()
    assert (tmp_path / checkpoint_name(200)).is_file()  # complete, but not (yet) in the manifest
    assert (tmp_path / "manifest.json").read_bytes() == before
    assert store.latest().meta["step"] == 100


@pytest.mark.parametrize("manifest", [None, b"{not json", b'{"format": "other", "checkpoints": []}', b"[1, 2]"])
def test_without_a_usable_manifest_complete_files_are_tried_newest_first(
        tmp_path: Path, manifest: bytes | None) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    _fill(store, [100, 200, 300])
    newest = tmp_path / checkpoint_name(300)
    newest.write_bytes(newest.read_bytes()[:-7])  # truncated: fails to parse
    if manifest is None:
        (tmp_path / "manifest.json").unlink()
    else:
        (tmp_path / "manifest.json").write_bytes(manifest)
    loaded = store.latest()
    assert loaded.meta["step"] == 200
    assert any("corrupt checkpoint" in s for s in loaded.skipped)


def test_no_valid_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=2)
    with pytest.raises(CheckpointError, match="no valid checkpoint .*none written yet"):
        store.latest()
    _fill(store, [100, 200])
    for s in (100, 200):
        (tmp_path / checkpoint_name(s)).write_bytes(os.urandom(256))
    with pytest.raises(CheckpointError) as info:
        store.latest()
    msg = str(info.value)
    assert str(tmp_path) in msg and msg.count("sha256 does not match") == 2


def test_non_finite_state_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    _fill(store, [100])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    bad = _tensors(200)
    bad["model.w"][0, 0] = float("nan")
    with pytest.raises(TrainingError, match="model.w"):
        store.save(200, bad, {})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("where", ["write", "replace"])
def test_failed_write_keeps_manifest_and_previous_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        where: str) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    _fill(store, [100, 200])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    if where == "replace":
        monkeypatch.setattr(fileio.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
    else:
        real = fileio.atomic_write

        def short_write(path, write, mode=0o644):  # type: ignore[no-untyped-def]
            def w(f):  # type: ignore[no-untyped-def]
                f.write(b"\0" * 10)
                raise OSError(27, "File too large")
            return real(path, w, mode)
        monkeypatch.setattr(ck, "atomic_write_bytes", lambda p, d: short_write(p, None))
    with pytest.raises(OSError):
        store.save(300, _tensors(300), {})
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp file either
    assert store.latest().meta["step"] == 200


def test_simulated_read_only_directory_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mkstemp failing with EACCES, as in a read-only directory (the tests run as root, where chmod
    does not stop writes; test_disk.py has the real chmod test for non-root users)."""
    store = CheckpointStore(tmp_path, keep=3)
    _fill(store, [100])

    def denied(*a: object, dir: str = "", **k: object) -> None:
        raise PermissionError(13, "Permission denied", dir)

    monkeypatch.setattr(fileio.tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError) as info:
        store.save(200, _tensors(200), {})
    monkeypatch.undo()
    assert str(info.value.filename) == str(tmp_path)
    assert store.latest().meta["step"] == 100
