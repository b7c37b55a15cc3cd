"""`asyncdqn tune`: the objective's math, the search spaces, and a tiny real study (CartPole, serial
backend, a few thousand steps per trial) that reports its evaluations, prunes, resumes from its SQLite
file and writes a preset snippet that presets.py would accept."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from asyncdqn.config import resolve_config  # noqa: E402
from asyncdqn.errors import ConfigError  # noqa: E402
from asyncdqn.tune import (  # noqa: E402
    SPACES,
    RunOutcome,
    Tuner,
    TuneSpec,
    auc,
    eval_rows,
    objective_value,
    preset_snippet,
    sample,
    to_config_values,
)


def test_auc_is_the_mean_of_the_carried_forward_curve() -> None:
    # grid of 4 points every 100 steps; evals at 130 (in interval 1) and 250 (interval 2)
    evals = [(130, -50.0), (250, 10.0)]
    # k=1: -50 (130 // 100 = 1), k=2: 10, k=3: 10, k=4: 10
    assert auc(evals, 100, 4) == pytest.approx((-50 + 10 + 10 + 10) / 4)
    # before the first evaluation the worst evaluation counts: eval only in interval 3
    assert auc([(310, 5.0), (320, 7.0)], 100, 4) == pytest.approx((5 + 5 + 7 + 7) / 4)
    with pytest.raises(ValueError):
        auc([], 100, 4)


def test_objective_counts_unsolved_as_the_budget() -> None:
    solved = RunOutcome(True, 12.5, 3000, 12.5, 3000, [(1000, 480.0)])
    unsolved = RunOutcome(False, None, None, 30.0, 9000, [(1000, 20.0)])
    assert objective_value("time", solved, 60.0, 10_000) == 12.5
    assert objective_value("time", unsolved, 60.0, 10_000) == 60.0
    assert objective_value("steps", solved, 60.0, 10_000) == 3000
    assert objective_value("steps", unsolved, 60.0, 10_000) == 10_000
    assert objective_value("auc", unsolved, 60.0, 3000, 1000) == pytest.approx(20.0)


def test_samples_are_valid_configs_and_respect_fixed_options() -> None:
    for algo, space in SPACES.items():
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))  # one study per algorithm
        for _ in range(5):
            trial = study.ask()
            params = sample(trial, algo, fixed=("lr",))
            assert "lr" not in params and set(params) <= set(space) | {"final_epsilon_probs"}
            cfg = resolve_config({"env_id": "CartPole-v1", "algo": algo, **params})  # validates every value
            assert len(cfg.final_epsilons) == len(cfg.final_epsilon_probs)
    assert to_config_values({"hidden_sizes": "64x32", "final_epsilons": "0.1/0.01/0.5"}) == {
        "hidden_sizes": [64, 32], "final_epsilons": [0.1, 0.01, 0.5], "final_epsilon_probs": [0.4, 0.3, 0.3]}


def test_eval_rows_reads_only_complete_lines(tmp_path: Path) -> None:
    m = tmp_path / "metrics.csv"
    m.write_text("kind,step,wall_time,worker,episode_return,episode_length,epsilon,eval_mean,eval_std,eval_episodes\n"
                 "episode,10,0.1,0,10.0,10,1.0,,,\neval,1000,1.0,,,,,42.5000,1.0,5\neval,2000,2.0,,,,,4")
    rows, offset = eval_rows(m)
    assert rows == [(1000, 42.5)]
    with open(m, "a") as f:
        f.write("4.0000,1.0,5\n")
    more, _ = eval_rows(m, offset)
    assert more == [(2000, 44.0)]


def test_snippet_is_a_preset_dict_literal() -> None:
    spec = TuneSpec("MountainCar-v0", "dqn", fixed={"eval_episodes": 10, "backend": "serial", "batch_size": 128})
    text = preset_snippet(spec, {"lr": 0.0040123, "hidden_sizes": [256, 256], "gamma": 0.98}, 90_000.0)
    body = text.split("\n", 1)[1]  # drop the comment line
    key, _, literal = body.partition(": ")
    assert ast.literal_eval(key) == ("MountainCar-v0", "dqn")
    d = ast.literal_eval(literal.rstrip().rstrip(","))
    assert d == {"lr": 0.00401, "hidden_sizes": (256, 256), "gamma": 0.98, "batch_size": 128}  # no eval/backend
    resolve_config({"env_id": "MountainCar-v0", "algo": "dqn", **d})


def test_bad_specs_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no search space"):
        Tuner(TuneSpec("CartPole-v1", "ppo"), tmp_path)
    with pytest.raises(ConfigError, match="exceed"):
        Tuner(TuneSpec("CartPole-v1", "n-step-q", jobs=1000), tmp_path)
    with pytest.raises(ConfigError, match="auc needs"):
        Tuner(TuneSpec("CartPole-v1", "n-step-q", objective="auc", fixed={"max_steps": None}), tmp_path)


TINY = {"backend": "serial", "hidden_sizes": [16], "envs_per_worker": 2, "eval_episodes": 3, "screen_episodes": 3,
        "solve_score": 60.0, "eval_trigger": False}


@pytest.mark.slow
def test_tiny_study_reports_prunes_and_resumes(tmp_path: Path) -> None:
    spec = TuneSpec("CartPole-v1", "n-step-q", objective="steps", trials=1, seeds=(100,), max_steps=3000,
                    eval_every_steps=1000, fixed=TINY, startup_trials=1)
    logs: list[str] = []
    report = Tuner(spec, tmp_path, log=logs.append).run()
    assert (tmp_path / "study.db").exists()
    done = [t for t in report["trials"] if t["state"] in ("COMPLETE", "PRUNED")]
    assert len(done) == 1
    study = optuna.load_study(study_name=spec.study_name(), storage=f"sqlite:///{tmp_path / 'study.db'}")
    for t in study.trials:
        if t.state.name == "COMPLETE":
            run = t.user_attrs["seed100"]
            # every greedy evaluation of metrics.csv reached the trial, at its grid index, negated
            want = {s // 1000: -m for s, m in run["evals"]}
            assert t.intermediate_values and set(t.intermediate_values) <= set(want)
            assert all(t.intermediate_values[k] == pytest.approx(want[k]) for k in t.intermediate_values)
            assert t.value == (run["steps_to_solve"] if run["solved"] else 3000)
    table = (tmp_path / "trials.md").read_text().splitlines()
    assert sum(line.startswith("| 0 | complete |") for line in table) == 1

    # Resume the same study with one more trial, under a pruner that stops any trial at its first report.
    # A long step budget and an unreachable solve score, so that the stop can only come from the pruner's
    # SIGTERM (with TINY's score of 60 over 3 episodes, a trial could solve at the very evaluation whose report
    # the pruner stopped, before the signal arrived).
    more = TuneSpec(**{**spec.__dict__, "trials": 2, "max_steps": 500_000, "fixed": {**TINY, "solve_score": 1e9}})
    tuner = Tuner(more, tmp_path, log=logs.append)
    tuner.study.pruner = optuna.pruners.ThresholdPruner(upper=-1e9)
    report = tuner.run()
    states = [t["state"] for t in report["trials"]]
    assert states == ["COMPLETE", "PRUNED"]
    pruned_run = tmp_path / "trials" / "trial0001-seed100"
    stopped = json.loads((pruned_run / "eval.json").read_text())
    assert stopped["stop_reason"] == "interrupted" and stopped["total_steps"] < 500_000  # SIGTERM, clean stop
    snippet = (tmp_path / "best_preset.py").read_text()
    assert snippet.startswith("# ENV_PRESETS") and "'CartPole-v1': {" in snippet
