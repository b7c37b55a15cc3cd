"""The README and docs/ pages: size limit, and every relative link and anchor resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub-style heading anchors of a Markdown page."""
    out = set()
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        text = line.lstrip("#").strip().lower()
        out.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return out


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # not inside code blocks
    return [a or b for a, b in LINK.findall(text)]


def test_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8")) <= 10_000


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_placeholder_left(page: Path) -> None:
    assert "@@" not in page.read_text(encoding="utf-8"), f"a placeholder was left in {page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for link in _links(page):
        if re.match(r"^[a-z]+:", link):  # http(s), mailto: not checked (no network)
            continue
        target, _, anchor = link.partition("#")
        dest = page if not target else (page.parent / target).resolve()
        if not dest.exists():
            broken.append(f"{link} (no {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{link} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{page.name}: broken links: {broken}"


def test_mkdocs_nav_lists_existing_pages() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = re.findall(r"^\s+- [^:]+: (\S+\.md)$", config, flags=re.M)
    assert nav and all((ROOT / "docs" / p).exists() for p in nav), nav
    outside = re.findall(r"^  (\S+\.md)$", config.split("not_in_nav:", 1)[-1], flags=re.M)
    unlisted = {p.name for p in PAGES[1:]} - set(nav) - set(outside)
    assert not unlisted, f"pages missing from mkdocs.yml nav: {sorted(unlisted)}"
