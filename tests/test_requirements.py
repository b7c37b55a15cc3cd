"""Dependencies split by need: runtime pins for `make train`, development tools for `make test`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV_TOOLS = {"pytest", "hypothesis", "ruff", "mypy"}


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]+\])?==(\S+)", line)
            assert m, f"{name}: not an exact pin: {line!r}"
            pins[m.group(1).lower()] = m.group(3)
    return pins


def test_runtime_pins_hold_no_development_tool() -> None:
    runtime = _pins("requirements.txt")
    assert "torch" in runtime and not DEV_TOOLS & set(runtime), sorted(DEV_TOOLS & set(runtime))


def test_development_pins_are_the_test_extra() -> None:
    dev = _pins("requirements-dev.txt")
    assert set(dev) == DEV_TOOLS
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert {re.split(r"[<>=\[]", req, maxsplit=1)[0].lower() for req in extra} == DEV_TOOLS


def test_make_train_installs_runtime_only_and_make_test_adds_the_rest() -> None:
    rules = {}
    for line in (ROOT / "Makefile").read_text().splitlines():
        if m := re.match(r"^([\w$().\-]+):(?!=)\s*(.*)$", line):
            rules[m.group(1)] = m.group(2).split()
    assert rules["train"] == ["$(STAMP)"]
    assert "requirements.txt" in rules["$(STAMP)"] and "requirements-dev.txt" in rules["$(DEV_STAMP)"]
    assert {"$(EXTRAS_STAMP)", "$(DEV_STAMP)"} <= set(rules["test"])
