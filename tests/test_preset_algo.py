"""An environment preset may pick the algorithm; `train` then says which and why."""

from __future__ import annotations

from asyncdqn.config import Config, resolve_config
from asyncdqn.presets import ALGO_REASONS, ENV_PRESETS, preset_algo_note


def test_every_preset_that_picks_an_algorithm_gives_its_reason() -> None:
    picking = {env for env, p in ENV_PRESETS.items() if "algo" in p and p["algo"] != Config.algo}
    assert picking == set(ALGO_REASONS)


def test_mountaincar_trains_dqn_and_says_why_unless_asked_otherwise() -> None:
    cfg = resolve_config({"env_id": "MountainCar-v0"})
    assert cfg.algo == "dqn" and cfg.solve_score == -110.0 and cfg.max_steps == 150_000
    note = preset_algo_note("MountainCar-v0", {"env_id": "MountainCar-v0"})
    assert note is not None and note.startswith("the MountainCar-v0 preset trains with --algo dqn: ")
    assert "replay buffer" in note
    assert preset_algo_note("MountainCar-v0", {"algo": "n-step-q"}) is None
    assert resolve_config({"env_id": "MountainCar-v0", "algo": "n-step-q"}).algo == "n-step-q"
    assert preset_algo_note("CartPole-v1", {}) is None
