"""Full disk (real: RLIMIT_FSIZE makes writes fail with EFBIG) and read-only directories.

Policy: a periodic checkpoint that cannot be written is a warning (training goes on,
the previous checkpoint stays valid); the exit checkpoint failing stops the run with
exit 2 and a message naming the directory and the checkpoint that is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ckpt_util import SMALL, assert_ok, assert_user_error, describe, run_cli

from asyncdqn.cli import main

LIMIT = 16_000  # bytes per file: config.json and metrics.csv fit, a checkpoint (~21 kB) does not
LIMITED = [sys.executable, "-c",
           "import resource, signal, sys\n"
           "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
           f"resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))\n"
           "from asyncdqn.cli import main\n"
           "sys.exit(main())\n"]
CKPT = "ckpt-000000000400.safetensors"


def _verify_manifest(ck: Path) -> list[str]:
    entries = json.loads((ck / "manifest.json").read_text())["checkpoints"]
    for e in entries:
        assert hashlib.sha256((ck / e["file"]).read_bytes()).hexdigest() == e["sha256"], e["file"]
    return [e["file"] for e in entries]


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("disk")
    run = root / "RUN"
    assert main(["train", *SMALL, "--max-steps", "400", "--run-dir", str(run)]) == 0
    assert (run / "checkpoints" / CKPT).stat().st_size > LIMIT
    # only this run is a subprocess: it needs the file-size limit
    full = run_cli(["train", "--resume", run, "--max-steps", 4400, "--checkpoint-every", 2000], prefix=LIMITED)
    listing = sorted(p.name for p in (run / "checkpoints").iterdir())
    manifest = _verify_manifest(run / "checkpoints")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "--resume", str(run), "--max-steps", "800"])
    again = subprocess.CompletedProcess([], code, "", err.getvalue())
    return {"run": run, "full": full, "listing": listing, "manifest": manifest, "again": again}


def test_full_disk_warns_then_stops_with_a_clear_error(full_disk: dict) -> None:
    r = full_disk["full"]
    line = assert_user_error(r, "cannot write the final checkpoint in", str(full_disk["run"] / "checkpoints"),
                             "File too large", f"{CKPT} is kept")
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("asyncdqn: warning: checkpoint at step")]
    assert warnings, describe(r)  # periodic ones failed too, and training went on to the budget
    assert all("File too large" in w and "training continues" in w for w in warnings), warnings
    assert line.startswith("asyncdqn: error:")


def test_full_disk_keeps_the_previous_checkpoint(full_disk: dict) -> None:
    assert full_disk["manifest"] == [CKPT]
    assert not [n for n in full_disk["listing"] if n.endswith(".tmp")], full_disk["listing"]
    r = full_disk["again"]
    assert_ok(r)
    assert f"from {CKPT} (step 400" in r.stderr, describe(r)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories; "
                    "test_checkpoints_store.py / test_resume.py simulate EACCES / EROFS instead")
def test_read_only_checkpoint_directory(tmp_path: Path) -> None:  # pragma: no cover - non-root only
    run = tmp_path / "RUN"
    assert_ok(run_cli(["train", *SMALL, "--max-steps", 400, "--run-dir", run]))
    ck = run / "checkpoints"
    ck.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        r = run_cli(["train", "--resume", run, "--max-steps", 800])
    finally:
        ck.chmod(0o755)
    assert_user_error(r, "cannot write the final checkpoint in", str(ck), "Permission denied", f"{CKPT} is kept")
    assert _verify_manifest(ck) == [CKPT]


def test_metrics_write_error_names_the_file(tmp_path: Path) -> None:
    from asyncdqn.errors import RunDirError
    from asyncdqn.rundir.metrics import MetricsWriter

    w = MetricsWriter(tmp_path / "metrics.csv")

    class Full:
        def writerow(self, row: object) -> None:
            raise OSError(27, "File too large")

    w._w = Full()  # type: ignore[assignment]
    with pytest.raises(RunDirError, match=f"cannot write {tmp_path / 'metrics.csv'}: File too large"):
        w.episode(1, 0.1, 0, 1.0, 1, 0.5)
    w.close()
