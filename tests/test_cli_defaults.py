"""The command line reads its defaults from their one home: it never restates them."""

from __future__ import annotations

import dataclasses

import pytest

from asyncdqn import cli, evaluate, policy
from asyncdqn.bench import preset_check as bench_presets
from asyncdqn.bench import solve


def test_evaluate_defaults_come_from_evaluate_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate, "DEFAULT_EPISODES", 7)
    monkeypatch.setattr(evaluate, "DEFAULT_SEED", 99)
    args = cli.build_parser().parse_args(["evaluate", "RUN"])
    assert (args.episodes, args.seed) == (7, 99)


def test_policy_evaluate_uses_the_same_defaults() -> None:
    defaults = policy.Policy.evaluate.__defaults__
    assert defaults is not None and defaults[:2] == (evaluate.DEFAULT_EPISODES, evaluate.DEFAULT_SEED)


def test_bench_solve_defaults_come_from_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = solve.Protocol(env_id="CartPole-v1", solve_score=475.0, eval_episodes=20, screen_episodes=3,
                             check_every_s=2.0, budget_s=30.0)
    monkeypatch.setattr(solve, "Protocol", lambda: changed)
    args = cli.build_parser().parse_args(["bench", "solve"])
    read = {"env_id": args.env_id, "solve_score": args.score, "eval_episodes": args.eval_episodes,
            "screen_episodes": args.screen_episodes, "check_every_s": args.check_every, "budget_s": args.budget}
    assert read == dataclasses.asdict(changed)


def test_bench_presets_reeval_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_presets, "REEVAL_EPISODES", 11)
    assert cli.build_parser().parse_args(["bench", "presets"]).reeval_episodes == 11


@pytest.mark.parametrize("argv", [["bench", "solve"], ["bench", "presets"], ["tune"]])
def test_shared_options_parse_alike(argv: list[str]) -> None:
    parser = cli.build_parser()
    args = parser.parse_args([*argv, "--seed-list", "3", "4", "--set", "lr=0.1", "--set", "gamma=0.9"])
    assert (args.seed_list, args.overrides) == ([3, 4], ["lr=0.1", "gamma=0.9"])
    if argv != ["tune"]:
        args = parser.parse_args([*argv, "--seeds", "3", "--parallel", "2"])
        assert (args.seeds, args.seed_list, args.parallel) == (3, None, 2)
    else:
        assert parser.parse_args(argv).seed_list == [100]
