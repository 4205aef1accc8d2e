"""Registers every fixture module under tests/fixtures/ as a pytest plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

# Fixture modules import one another; have all of them assert-rewritten up front.
pytest.register_assert_rewrite("tests.fixtures")

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "tests" / "fixtures").glob("*.py")
    if p.stem != "__init__"
)
