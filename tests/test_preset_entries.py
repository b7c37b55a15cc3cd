"""Presets hold only what differs: every entry changes the resolved configuration somewhere it applies.

A preset entry is redundant when deleting it changes no configuration that `resolve_config` can
produce with that preset in play. The layers below an entry are the Config defaults, then (for an
algorithm or named preset) the environment preset and the (environment, algorithm) preset. So an
environment preset may not restate a Config default, while an (environment, algorithm) preset may
set a default back where its environment preset changed it (LunarLander-v3's dqn preset turns the
weight average off again), and a named preset may restate a default that some environment preset
changes (seed-compat's 128x128 network on CartPole-v1).
"""

from __future__ import annotations

from typing import Any

import pytest

from asyncdqn import presets
from asyncdqn.config import ALGOS, Config, resolve_config
from asyncdqn.errors import ConfigError

NO_PRESET_ENV = "NoPresetEnv-v0"


def _contexts(layer: str, key: Any) -> list[dict[str, Any]]:
    """The resolve_config calls in which the preset `key` of `layer` takes part."""
    algos: list[str | None] = [None, *ALGOS]
    named: list[str | None] = [None, *presets.NAMED_PRESETS]
    if layer == "env":
        return [_call(key, a, n) for a in algos for n in named]
    if layer == "algo":
        env_id, algo = key
        return [_call(env_id, algo, n) for n in named]
    envs: list[str | None] = [None, NO_PRESET_ENV, *presets.ENV_PRESETS]
    return [_call(e, a, key) for e in envs for a in algos]


def _call(env_id: str | None, algo: str | None, named: str | None) -> dict[str, Any]:
    overrides = {"env_id": env_id, "algo": algo, "preset": named}
    return {k: v for k, v in overrides.items() if v is not None}


def _resolve(overrides: dict[str, Any]) -> Any:
    try:
        return resolve_config(overrides)
    except ConfigError as exc:  # e.g. no stop rule: the same error with and without the entry is no change
        return f"ConfigError: {exc}"


def redundant_entries() -> list[str]:
    """Every preset entry whose removal changes no resolved configuration."""
    found = []
    layers: list[tuple[str, dict[Any, dict[str, Any]]]] = [
        ("env", presets.ENV_PRESETS), ("algo", presets.ALGO_PRESETS), ("named", presets.NAMED_PRESETS)]
    for layer, table in layers:
        for key, preset in table.items():
            calls = _contexts(layer, key)
            before = [_resolve(c) for c in calls]
            for field in list(preset):
                value = preset.pop(field)
                try:
                    after = [_resolve(c) for c in calls]
                finally:
                    preset[field] = value
                if after == before:
                    found.append(f"{layer} preset {key!r}: {field}={value!r}")
    return found


def test_no_preset_entry_is_redundant() -> None:
    redundant = redundant_entries()
    assert not redundant, "preset entries that change nothing (the layers below already give them): " + "; ".join(
        redundant)


@pytest.mark.parametrize(("env_id", "preset"), sorted(presets.ENV_PRESETS.items()))
def test_env_preset_entries_differ_from_config_defaults(env_id: str, preset: dict[str, Any]) -> None:
    defaults = Config()
    same = [k for k, v in preset.items() if getattr(defaults, k) == (tuple(v) if isinstance(v, list) else v)]
    assert not same, f"{env_id}: entries equal to the Config default: {same}"


def test_the_check_finds_a_restated_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # An environment preset restating a default, and an algorithm preset restating its environment
    # preset, are both caught; an algorithm preset undoing its environment preset is not.
    monkeypatch.setitem(presets.ENV_PRESETS["CartPole-v1"], "gamma", Config().gamma)
    monkeypatch.setitem(presets.ALGO_PRESETS[("LunarLander-v3", "dqn")], "gamma",
                        presets.ENV_PRESETS["LunarLander-v3"]["gamma"])
    found = redundant_entries()
    assert "env preset 'CartPole-v1': gamma=0.99" in found
    assert "algo preset ('LunarLander-v3', 'dqn'): gamma=0.995" in found
    assert len(found) == 2, found
