"""Bad checkpoint files given to `evaluate`, `render` and `train --resume`: one-line error, exit 2,
nothing executed. (tests/test_cli.py covers evaluate with random bytes, a pickle and a
wrong architecture as subprocesses; this adds truncation, render, digest mismatch and every
case for --resume, calling the CLI's `main` in process to keep the tests fast.)"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ckpt_util import SMALL

from asyncdqn.cli import main

CKPT = "ckpt-000000000400.safetensors"


class _Exploit:
    """Unpickling this creates `marker` (a side effect we can look for)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def _copy(src: Path, dst: Path, edit: Callable[[Path], None]) -> Path:
    shutil.copytree(src, dst)
    edit(dst / "checkpoints")
    return dst


def _put(name: str, data: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(ck: Path) -> None:
        (ck / name).write_bytes(data((ck / name).read_bytes()))
    return edit


def _with_manifest_digest(data: Callable[[Path], bytes]) -> Callable[[Path], None]:
    """Replace the checkpoint and update the manifest so the digest matches (a consistent but wrong file)."""
    def edit(ck: Path) -> None:
        new = data(ck)
        (ck / CKPT).write_bytes(new)
        m = json.loads((ck / "manifest.json").read_text())
        m["checkpoints"][-1].update(sha256=hashlib.sha256(new).hexdigest(), bytes=len(new))
        (ck / "manifest.json").write_text(json.dumps(m))
    return edit


class Ran:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def _user_error(r: Ran, *needles: str) -> str:
    assert r.code == 2, r
    lines = [ln for ln in r.err.splitlines() if ln.startswith("asyncdqn: error:")]
    assert len(lines) == 1, r
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("badfiles")
    base, other = root / "base", root / "other"
    out: dict[str, Any] = {"root": root}

    def cli(name: str, args: list[Any]) -> None:
        import contextlib
        import io
        o, e = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
            code = main([str(a) for a in args])
        out[name] = Ran(code, o.getvalue(), e.getvalue())

    cli("base", ["train", *SMALL, "--max-steps", 400, "--run-dir", base])
    cli("other", ["train", *SMALL, "--hidden-sizes", 24, "--max-steps", 400, "--run-dir", other])
    assert out["base"].code == 0 and out["other"].code == 0, (out["base"], out["other"])
    marker = root / "pwned"
    out["marker"] = marker
    payload = pickle.dumps(_Exploit(marker))
    resume_variants = {
        "truncated": _put(CKPT, lambda b: b[: len(b) // 3]),
        "random": _put(CKPT, lambda b: os.urandom(len(b))),
        "pickle": _put(CKPT, lambda b: payload),
        "digest": _put(CKPT, lambda b: b[:-1] + bytes([b[-1] ^ 0xFF])),  # parses; one tensor byte changed
        "pickle-digest-ok": _with_manifest_digest(lambda ck: payload),
        "architecture": _with_manifest_digest(lambda ck: (other / "checkpoints" / CKPT).read_bytes()),
    }
    for name, edit in resume_variants.items():
        run = _copy(base, root / f"resume-{name}", edit)
        cli(f"resume-{name}", ["train", "--resume", run, "--max-steps", 800])
    for cmd in ("evaluate", "render"):
        for name, edit in {"truncated": _put("final.safetensors", lambda b: b[:-100]),
                           "pickle": _put("final.safetensors", lambda b: payload)}.items():
            run = _copy(base, root / f"{cmd}-{name}", edit)
            extra = ["--episodes", 1] + (["--out", run / "x.gif", "--max-steps", 5] if cmd == "render" else [])
            cli(f"{cmd}-{name}", [cmd, run, "--checkpoint", "final", *extra])
    cli("evaluate-rotating", ["evaluate", base, "--checkpoint", CKPT, "--episodes", 1])
    # --lr 1e10 with the default loss (Huber), clipping and Adam: the weights run away but stay finite
    cli("diverge", ["train", *SMALL, "--lr", "1e10", "--max-steps", 20000,
                    "--checkpoint-every", 200, "--run-dir", root / "diverge"])
    return out


@pytest.mark.parametrize("name", ["truncated", "random", "pickle", "digest", "pickle-digest-ok"])
def test_resume_with_a_bad_checkpoint_is_a_user_error(results: dict[str, Any], name: str) -> None:
    r = results[f"resume-{name}"]
    line = _user_error(r, "no valid checkpoint in", str(results["root"] / f"resume-{name}" / "checkpoints"), CKPT)
    reason = "sha256 does not match" if name != "pickle-digest-ok" else "corrupt checkpoint"
    assert reason in line, line
    assert not results["marker"].exists(), "a pickled payload was executed"


def test_resume_with_a_wrong_architecture_lists_keys_and_shapes(results: dict[str, Any]) -> None:
    line = _user_error(results["resume-architecture"], "does not match the model", CKPT)
    for key, ckpt, model in [("q.0.weight", (24, 4), (32, 4)), ("q.2.weight", (2, 24), (32, 32))]:
        assert f"{key}: checkpoint {ckpt} vs model {model}" in line, line
    assert "missing q.4.weight" in line


@pytest.mark.parametrize("name", ["evaluate-truncated", "evaluate-pickle", "render-truncated", "render-pickle"])
def test_evaluate_and_render_with_a_bad_checkpoint(results: dict[str, Any], name: str) -> None:
    line = _user_error(results[name], "final.safetensors")
    assert "corrupt checkpoint" in line
    assert not results["marker"].exists(), "a pickled payload was executed"
    assert not (results["root"] / name / "x.gif").exists()


def test_evaluate_accepts_a_rotating_checkpoint(results: dict[str, Any]) -> None:
    assert results["evaluate-rotating"].code == 0, results["evaluate-rotating"]


def test_diverging_run_stops_with_exit_1_and_writes_no_bad_checkpoint(results: dict[str, Any]) -> None:
    r = results["diverge"]
    assert r.code == 1, r
    assert "asyncdqn: training failed:" in r.err and "diverged" in r.err, r
    assert "implies Q-values far beyond any return the rewards seen allow" in r.err, r
    ck = results["root"] / "diverge" / "checkpoints"
    # no resume checkpoint of the diverged state (the failure path adds none), no final one either
    assert not list(ck.glob("ckpt-*.safetensors")), sorted(p.name for p in ck.iterdir())
    assert not (ck / "final.safetensors").exists() and "final checkpoint not written: the weights diverged" in r.err
