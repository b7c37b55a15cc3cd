"""Shared test set-up: the test environments of `chain_env` are importable from every test folder
(and from spawn-started workers, which inherit sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
