"""Fold a record's many small run files into one ``runs.json`` per record.

A record keeps each run's ``config.json`` and ``eval.json`` (and the per-seed result files that
``bench`` writes) and the runs' logs, but hundreds of small files cost a 4 kB disk block each in
every clone. This script moves into ``benchmarks/records/<record>/runs.json``, keyed by the file's
path relative to the record, with the content unchanged:

- every JSON file below the record's top folder (the top-level ones are its summaries), as JSON;
- every log, text and CSV file (``.log``, ``.txt``, ``.csv``) at any depth, as a string.

READMEs, scripts and figures stay files. ::

    python benchmarks/bundle_records.py benchmarks/records/<record> [...]
    # read one back:
    json.load(open("benchmarks/records/<record>/runs.json"))["run-s0/eval.json"]    # a dict
    print(json.load(open("benchmarks/records/<record>/runs.json"))["search.log"])   # a log's text

Running it again on a record merges new files into the existing bundle and rewrites it in the
current format (one line per file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BUNDLE = "runs.json"
TEXT_SUFFIXES = (".log", ".txt", ".csv")  # folded as strings, from any depth


def dumps(bundled: dict[str, object]) -> str:
    """The bundle's text: one line per file, sorted by path, each file's JSON compact on its line
    (a diff shows which runs changed; indentation would cost a third of the bytes)."""
    lines = [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in sorted(bundled.items())]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _folded(path: Path, record: Path) -> bool:
    """Whether `path` goes into the bundle: a nested JSON file, or a log/text/CSV file anywhere."""
    if path.suffix == ".json":
        return path.parent != record
    return path.suffix in TEXT_SUFFIXES


def bundle(record: Path) -> int:
    """Fold ``record``'s run files into ``record/runs.json``; return how many were folded."""
    target = record / BUNDLE
    bundled: dict[str, object] = json.loads(target.read_text()) if target.exists() else {}
    files = sorted(p for p in record.rglob("*") if p.is_file() and _folded(p, record))
    if not files and not bundled:
        return 0
    for path in files:
        text = path.read_text()
        bundled[path.relative_to(record).as_posix()] = json.loads(text) if path.suffix == ".json" else text
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(dumps(bundled))
    tmp.replace(target)  # atomic: a half-written bundle never replaces a good one
    for path in files:
        path.unlink()
    for folder in sorted((d for d in record.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()  # a run's folder emptied by the fold (deepest first)
    return len(files)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for name in argv:
        record = Path(name)
        if not record.is_dir():
            print(f"error: {record} is not a directory", file=sys.stderr)
            return 2
        print(f"{record}: {bundle(record)} files folded into {BUNDLE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
