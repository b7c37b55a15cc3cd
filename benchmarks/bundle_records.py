"""Fold a record's many small JSON files into one ``runs.json`` per record.

A record keeps each run's ``config.json`` and ``eval.json`` (and the per-seed result files that
``bench`` writes), but hundreds of 1 kB files cost a 4 kB disk block each in every clone. This
script moves every JSON file below ``benchmarks/records/<record>/`` except the record's own
top-level summaries into ``benchmarks/records/<record>/runs.json``, keyed by the file's path
relative to the record, with the content unchanged::

    python benchmarks/bundle_records.py benchmarks/records/<record> [...]
    # read one back:
    json.load(open("benchmarks/records/<record>/runs.json"))["run-s0/eval.json"]

Running it again on a record merges new files into the existing bundle.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BUNDLE = "runs.json"


def bundle(record: Path) -> int:
    """Fold ``record``'s nested JSON files into ``record/runs.json``; return how many were folded."""
    target = record / BUNDLE
    bundled: dict[str, object] = json.loads(target.read_text()) if target.exists() else {}
    files = sorted(p for p in record.rglob("*.json") if p.parent != record)
    if not files:
        return 0
    for path in files:
        bundled[path.relative_to(record).as_posix()] = json.loads(path.read_text())
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(sorted(bundled.items())), indent=1) + "\n")
    tmp.replace(target)  # atomic: a half-written bundle never replaces a good one
    for path in files:
        path.unlink()
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
