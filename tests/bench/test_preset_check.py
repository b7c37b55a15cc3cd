"""`asyncdqn bench presets`: the row plan, the summary's arithmetic, and one tiny real row (CartPole,
serial backend, a couple of thousand steps) run through the subprocess driver, resumed without rerunning."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from asyncdqn.bench.preset_check import RL_ZOO, format_table, plan, run_presets, summarize, zoo_reference


def _record(seed: int, solved: bool, t: float | None, steps: int, total: int, returned: float) -> dict[str, Any]:
    return {"env_id": "Acrobot-v1", "algo": "n-step-q", "seed": seed, "solve_score": -100.0, "budget_s": 600.0,
            "max_steps": None, "solved": solved, "time_to_solve_s": t, "steps_to_solve": steps if solved else None,
            "total_steps": total, "wall_time_s": t or 600.0, "final_eval": {"mean": returned, "std": 1.0}}


def test_summary_counts_unsolved_runs_as_the_budget() -> None:
    recs = [_record(0, True, 30.0, 100_000, 100_000, -80.0), _record(1, False, None, 0, 900_000, -150.0),
            _record(2, True, 50.0, 200_000, 200_000, -90.0)]
    (s,) = summarize(recs)
    assert (s["solved"], s["runs"]) == (2, 3)
    assert s["time_s"]["median"] == 50.0  # median of 30, 600 (unsolved = budget), 50
    assert s["steps"]["median"] == 200_000  # median of 100k, 900k (unsolved = steps run), 200k
    assert s["returned_policy"]["median"] == -90.0 and s["returned_policy"]["min"] == -150.0
    assert s["returned_policy"]["reaches_score"] == 2
    table = format_table([s])
    assert "| Acrobot-v1 | n-step-q | -100 | 600 s | 2/3 | 50.0 | 200,000 | -90.0 (-150.0) | -83.4 ± 17.2 (a2c" in table


def test_zoo_reference_and_plan() -> None:
    assert zoo_reference("MountainCar-v0", "dqn") == ("dqn", RL_ZOO[("MountainCar-v0", "dqn")])
    assert zoo_reference("LunarLander-v3", "one-step-q")[0] == "a2c"  # type: ignore[index]
    rows, skipped = plan(["CartPole-v1", "MountainCar-v0"], ["n-step-q", "dqn"])
    assert rows == [("CartPole-v1", "n-step-q"), ("CartPole-v1", "dqn"), ("MountainCar-v0", "dqn")]
    assert len(skipped) == 1 and "MountainCar-v0-n-step-q" in skipped[0]  # no solve score: nothing promised


@pytest.mark.slow
def test_one_tiny_row_runs_and_resumes(tmp_path: Path) -> None:
    over = {"backend": "serial", "workers": 1, "hidden_sizes": [16], "envs_per_worker": 2, "max_steps": 2000,
            "max_seconds": None, "eval_every_steps": 1000, "eval_episodes": 3, "screen_episodes": 3,
            "solve_score": 30.0}
    logs: list[str] = []
    out = run_presets(tmp_path, ["CartPole-v1"], ["n-step-q"], [0], overrides=over, reeval_episodes=4,
                      log=logs.append)
    rec = json.loads((tmp_path / "CartPole-v1-n-step-q-seed0.json").read_text())
    assert rec["seed"] == 0 and rec["solve_score"] == 30.0 and rec["overrides"] == over
    assert rec["final_eval"]["episodes"] == 4 and math.isfinite(rec["final_eval"]["mean"])
    if rec["solved"]:
        assert rec["steps_to_solve"] <= 2000 and rec["evals"][-1]["mean"] >= 30.0
    else:
        assert rec["total_steps"] >= 2000
    (s,) = out["report"]["summary"]
    assert s["runs"] == 1 and s["solved"] == int(rec["solved"])
    assert (tmp_path / "summary.md").read_text().startswith("| env | algo |")
    stamp = (tmp_path / "CartPole-v1-n-step-q-seed0.json").stat().st_mtime_ns
    logs.clear()
    again = run_presets(tmp_path, ["CartPole-v1"], ["n-step-q"], [0], overrides=over, reeval_episodes=4,
                        log=logs.append)
    assert not any(m.startswith("running") for m in logs)  # resumed: nothing rerun
    assert (tmp_path / "CartPole-v1-n-step-q-seed0.json").stat().st_mtime_ns == stamp
    assert again["report"]["summary"] == out["report"]["summary"]
