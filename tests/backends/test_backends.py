"""Serial and process backends: reproducibility, agreement, and learning CartPole-v1."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asyncdqn import train
from asyncdqn.rundir.checkpoint import load_checkpoint


def _episode_rows(run_dir: Path) -> list[tuple[str, ...]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # wall_time differs between runs; everything else must not
    return [(r["step"], r["worker"], r["episode_return"], r["episode_length"], r["epsilon"])
            for r in rows if r["kind"] == "episode"]


def _final_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(run_dir / "checkpoints" / "final.safetensors")
    return tensors


def _tiny(tmp_path: Path, name: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "env_id": "CartPole-v1", "max_steps": 4000, "max_seconds": None, "solve_score": None,
        "eval_every_steps": None, "eval_episodes": 3, "progress": False, "run_dir": str(tmp_path / name),
        "target_update_steps": 500,
    }
    base.update(kw)
    return base


def test_serial_runs_are_reproducible(tmp_path: Path) -> None:
    a = train(_tiny(tmp_path, "a", backend="serial", workers=2))
    b = train(_tiny(tmp_path, "b", backend="serial", workers=2))
    assert _episode_rows(a.run_dir) == _episode_rows(b.run_dir)
    assert len(_episode_rows(a.run_dir)) > 10
    ta, tb = _final_tensors(a.run_dir), _final_tensors(b.run_dir)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    assert a.final_eval["returns"] == b.final_eval["returns"]


def test_different_seeds_differ(tmp_path: Path) -> None:
    a = train(_tiny(tmp_path, "a", backend="serial", workers=1, seed=1))
    b = train(_tiny(tmp_path, "b", backend="serial", workers=1, seed=2))
    assert _episode_rows(a.run_dir) != _episode_rows(b.run_dir)


def test_one_process_worker_matches_serial_bit_for_bit(tmp_path: Path) -> None:
    """The same worker code, in a spawned process or in-process, computes the same run."""
    s = train(_tiny(tmp_path, "s", backend="serial", workers=1, optimizer="rmsprop", algo="one-step-q"))
    p = train(_tiny(tmp_path, "p", backend="process", workers=1, optimizer="rmsprop", algo="one-step-q"))
    assert s.total_steps == p.total_steps
    assert _episode_rows(s.run_dir) == _episode_rows(p.run_dir)
    ts, tp = _final_tensors(s.run_dir), _final_tensors(p.run_dir)
    for k in ts:
        assert torch.equal(ts[k], tp[k]), k


def test_process_backend_counts_every_step(tmp_path: Path) -> None:
    r = train(_tiny(tmp_path, "p", backend="process", workers=2, envs_per_worker=3, t_max=4, max_steps=3000))
    meta = load_checkpoint(r.run_dir / "checkpoints" / "final.safetensors")[1]
    seg = 3 * 4
    # each worker stops at the first segment boundary past the budget
    assert 3000 <= r.total_steps <= 3000 + 2 * seg
    assert sum(meta["per_worker_steps"]) == r.total_steps
    # whole segments only (a worker spawned late on a loaded machine may find the budget already spent)
    assert len(meta["per_worker_steps"]) == 2 and all(n % seg == 0 for n in meta["per_worker_steps"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["serial", "process"])
def test_learns_cartpole(tmp_path: Path, backend: str) -> None:
    """Both backends reach a greedy mean >= 195 over 20 fresh episodes within a fixed budget."""
    r = train({
        "env_id": "CartPole-v1", "backend": backend, "workers": 2, "seed": 3,
        "max_steps": 400_000, "max_seconds": 240, "solve_score": 195.0, "eval_episodes": 20,
        "screen_episodes": 5, "eval_every_steps": 20_000, "progress": False, "run_dir": str(tmp_path / backend),
    })
    assert r.solved, r.to_dict()
    assert r.solve_eval is not None and r.solve_eval["episodes"] == 20 and r.solve_eval["mean"] >= 195.0
    report = json.loads((r.run_dir / "eval.json").read_text())
    assert report["solved"] is True and report["steps_to_solve"] == r.steps_to_solve


def test_seed_compat_preset_runs_with_the_notebook_schedule(tmp_path: Path) -> None:
    """seed-compat: 8 workers x 1 env, one-step Q, epsilon x0.999 per episode from 1.0."""
    r = train({"preset": "seed-compat", "backend": "serial", "max_steps": 6000, "solve_score": None,
               "eval_every_steps": None, "eval_episodes": 2, "progress": False, "run_dir": str(tmp_path / "sc")})
    cfg = json.loads((r.run_dir / "config.json").read_text())
    assert (cfg["workers"], cfg["envs_per_worker"], cfg["algo"], cfg["t_max"]) == (8, 1, "one-step-q", 10)
    with open(r.run_dir / "metrics.csv", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["kind"] == "episode"]
    by_worker: dict[str, list[float]] = {}
    for row in rows:
        by_worker.setdefault(row["worker"], []).append(float(row["epsilon"]))
    assert len(by_worker) == 8
    for eps in by_worker.values():
        # the k-th episode of a worker is played with 0.999**k
        assert eps == pytest.approx([0.999**k for k in range(len(eps))], rel=1e-3)


MAIN_SCRIPT = '''
import os, sys
if __name__ == "__mp_main__":  # a spawned child re-running this script
    with open(os.environ["MARKER"], "a") as f:
        f.write("rerun\\n")
if __name__ == "__main__":
    from asyncdqn.backends.base import SPAWN
    from asyncdqn.backends.process import _main_script_hidden
    p = SPAWN.Process(target=os.getpid)
    with _main_script_hidden():
        p.start()
    p.join()
    print(os.path.basename(sys.modules["__main__"].__file__))  # put back after the spawn
    p = SPAWN.Process(target=os.getpid)
    p.start()
    p.join()
'''


def test_a_ray_groups_workers_do_not_rerun_the_main_script(tmp_path: Path) -> None:
    """A ray node group's main script is Ray's worker: its Hogwild workers must not re-import it
    (`rerun_main=False`); any other spawn still re-runs the main script as multiprocessing does."""
    script, marker = tmp_path / "main_script.py", tmp_path / "marker"
    script.write_text(MAIN_SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MARKER": str(marker)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "main_script.py"
    assert marker.read_text() == "rerun\n"  # once: by the second child only
