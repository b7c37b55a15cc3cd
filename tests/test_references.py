"""Every repository path named in a comment, docstring or page exists; no comment cites the issue tracker.

Scanned: comments and docstrings of src/ and tests/, and docs/*.md, README.md and
benchmarks/**/*.md. A path counts when it starts at a top-level folder (src/, tests/, docs/,
benchmarks/) or, in benchmarks/, at records/; a test file named alone (`test_cli.py`) must exist
somewhere in tests/. A path into a record whose run files were folded into its runs.json
(benchmarks/bundle_records.py) resolves when runs.json holds a key under it. Skipped: paths with
a placeholder (`<name>`, `*`, `{a,b}`, `$VAR`) and paths under what .gitignore keeps out of the
tree (command outputs such as benchmarks/results/).
"""

from __future__ import annotations

import ast
import functools
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"(?<![\w./\-])((?:src|tests|docs|benchmarks|records)/[\w.\-/]*)(.?)")
TEST_FILE = re.compile(r"(?<![\w/])(test_\w+\.py)\b")  # a test file named without its folder
IGNORED = ("benchmarks/results/",)  # .gitignore'd command outputs
ISSUE = re.compile(r"\bissues?\s*#?\d+|\bthe issue(?:'s)?\b(?! is| tracker)", re.I)  # numbered, or as a source


def _python_text(path: Path) -> str:
    """The comments and docstrings of a Python file, one per line."""
    source = path.read_text(encoding="utf-8")
    parts = [tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            parts.append(ast.get_docstring(node, clean=False) or "")
    return "\n".join(parts)


def _sources() -> list[Path]:
    py = [p for d in ("src", "tests") for p in sorted((ROOT / d).rglob("*.py"))]
    md = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "benchmarks").rglob("*.md"))]
    return py + md


def _text(path: Path) -> str:
    return _python_text(path) if path.suffix == ".py" else path.read_text(encoding="utf-8")


@functools.cache
def _bundle(record: Path) -> tuple[str, ...]:
    runs = record / "runs.json"
    return tuple(json.loads(runs.read_text())) if runs.is_file() else ()


def resolves(ref: str, page: Path) -> bool:
    """Whether `ref` names something in the repository (from the root, or from benchmarks/ for records/)."""
    base = ROOT / "benchmarks" if ref.startswith("records/") else ROOT
    target = base / ref
    if target.exists() or (target.parent.is_dir() and any(target.parent.glob(f"{target.name}.*"))):
        return True  # the file or folder, or an output prefix (`--out docs/compare_cartpole` writes its .png and .md)
    parts = Path(ref).parts
    if base == ROOT and parts[:2] == ("benchmarks", "records"):
        parts = parts[1:]
    if len(parts) >= 3 and parts[0] == "records":  # records/<record>/<inside>: folded into runs.json?
        record, inside = ROOT / "benchmarks" / parts[0] / parts[1], "/".join(parts[2:])
        return any(key == inside or key.startswith(inside.rstrip("/") + "/") for key in _bundle(record))
    return False


def dangling(text: str, page: Path) -> list[str]:
    out = []
    for ref, after in PATH.findall(text):
        if after in ("<", "*", "{", "$") or ref.startswith(IGNORED):  # a placeholder follows: not one path
            continue
        ref = ref.rstrip(".-")
        if not resolves(ref, page):
            out.append(ref)
    test_files = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    out += [name for name in TEST_FILE.findall(text) if name not in test_files]
    return sorted(set(out))


@pytest.mark.parametrize("page", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_path_exists(page: Path) -> None:
    missing = dangling(_text(page), page)
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_issue_tracker_citation(page: Path) -> None:
    cited = [m.group(0) for m in ISSUE.finditer(_text(page))]
    assert not cited, f"{page.relative_to(ROOT)} cites the issue tracker (say what it means instead): {cited}"


def test_the_checks_can_fail(tmp_path: Path) -> None:
    page = ROOT / "docs" / "index.md"
    assert dangling("see `tests/test_no_such_file.py` and src/asyncdqn/config.py.", page) == [
        "tests/test_no_such_file.py"]
    assert dangling("as test_cli.py and test_gone_away.py check", page) == ["test_gone_away.py"]
    assert dangling("runs go to benchmarks/records/minatar-<date>/ or benchmarks/results/x.json", page) == []
    folded = next(p for p in sorted((ROOT / "benchmarks" / "records").glob("*/runs.json")))
    key = next(iter(_bundle(folded.parent)))
    record = folded.parent.relative_to(ROOT).as_posix()
    assert dangling(f"{record}/{key.split('/')[0]}/", page) == []  # a folded folder resolves
    assert dangling(f"{record}/no-such-run/", page) == [f"{record}/no-such-run/"]
    assert ISSUE.search("as issue 14 found") and ISSUE.search("(issue #12)") and ISSUE.search("the issue's example")
    assert not ISSUE.search("issues are rare") and not ISSUE.search("the issue is that it blocks")
    source = tmp_path / "m.py"
    source.write_text('"""Doc: docs/nowhere.md."""\nx = "tests/in_a_string_not_a_comment.py"  # tests/gone.py\n')
    assert dangling(_python_text(source), source) == ["docs/nowhere.md", "tests/gone.py"]
