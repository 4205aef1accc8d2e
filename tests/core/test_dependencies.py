"""Dependency direction (STYLE.md §3): the agent imports nothing from the gateway but
gateway.wire, and gateway.wire imports only the standard library (and cryptography for the
TLS binding hash). import-linter checks the same in CI; this catches modules added later."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_agent_imports_only_gateway_wire() -> None:
    bad = {
        (str(p.relative_to(ROOT)), m)
        for p in (ROOT / "agent").rglob("*.py")
        for m in imported_modules(p)
        if (m == "gateway" or m.startswith("gateway.")) and not m.startswith("gateway.wire")
    }
    assert not bad


def test_wire_imports_only_stdlib() -> None:
    allowed = set(sys.stdlib_module_names) | {"gateway", "cryptography"}
    bad = {
        (str(p.relative_to(ROOT)), m)
        for p in (ROOT / "gateway" / "wire").rglob("*.py")
        for m in imported_modules(p)
        if m.split(".")[0] not in allowed or (m.startswith("gateway.")
                                               and not m.startswith("gateway.wire"))
    }
    assert not bad
