"""Modules meet at public names: no asyncdqn module uses another's underscore-private names."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "asyncdqn"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(source: str, module: str) -> list[str]:
    """Underscore names that `source` (the module `module`) takes from other asyncdqn modules: imported
    by name, reached through an imported asyncdqn name (`mod._x`, `Cls._x`), or private modules."""
    found = []
    bound: dict[str, str] = {}  # local name -> the asyncdqn module it came from
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{module}: relative import at line {node.lineno}; the check expects absolute ones")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "asyncdqn":
            if node.module != module and any(_private(part) for part in node.module.split(".")):
                found.append(f"line {node.lineno}: private module {node.module}")
            for alias in node.names:
                if _private(alias.name) and node.module != module:
                    found.append(f"line {node.lineno}: {node.module}.{alias.name}")
                bound[alias.asname or alias.name] = node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "asyncdqn":
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"line {node.lineno}: private module {alias.name}")
                    bound[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in bound and bound[node.value.id] != module):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr} (from {bound[node.value.id]})")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    offenders = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if found := private_uses(path.read_text(encoding="utf-8"), module):
            offenders[module] = found
    assert not offenders, f"private names used across modules (make them public where they belong): {offenders}"


def test_the_check_sees_each_way_in() -> None:
    src = (
        "from asyncdqn.config import _HINTS, Config\n"
        "from asyncdqn.report import plotting\n"
        "import asyncdqn.bench.solve as solve\n"
        "from asyncdqn._internal import thing\n"
        "plotting._atomic_savefig(1, 2)\n"
        "solve._median([1])\n"
        "Config._private_helper\n"
        "plotting.save_png(1, 2)\n"
        "x = _local_name = 1\n"
    )
    found = private_uses(src, "asyncdqn.cli")
    assert len(found) == 5, found
    assert any("_HINTS" in f for f in found) and any("_atomic_savefig" in f for f in found)
    assert any("_median" in f for f in found) and any("_private_helper" in f for f in found)
    assert any("private module asyncdqn._internal" in f for f in found)
    # a module's own private names are its own business
    assert private_uses("from asyncdqn.config import _coerce\n", "asyncdqn.config") == []
