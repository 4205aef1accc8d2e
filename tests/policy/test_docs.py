"""docs/POLICIES.md documents every key with default.toml's default, and its examples load."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.policy.decide import explain
from gateway.policy.load import check_dir, load_policies
from gateway.policy.schema import SCHEMA
from tests.fixtures.policy import SHIPPED_POLICIES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "POLICIES.md").read_text(encoding="utf-8")
DEFAULTS = {}
_section = ""
for _line in (SHIPPED_POLICIES / "default.toml").read_text(encoding="utf-8").splitlines():
    if m := re.match(r"\[(\w+)\]", _line):
        _section = m[1]
    elif m := re.match(r"(\w+) = (.+)$", _line):
        DEFAULTS[f"{_section}.{m[1]}"] = m[2]


@pytest.mark.parametrize("name", [f"{s}.{k}" for s, keys in SCHEMA.items() for k in keys])
def test_docs_list_every_key_with_its_default(name: str) -> None:
    rows = [line for line in DOC.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"docs/POLICIES.md has no row for {name}"
    cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
    assert cells[2] == f"`{DEFAULTS[name]}`"


def test_docs_examples_load(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(SHIPPED_POLICIES, tmp_path / "p"))
    examples = re.findall(r"```toml\n(# policies/(\S+)\n.*?)```", DOC, re.S)
    assert len(examples) >= 4
    for text, name in examples:
        (folder / name).write_text(text, encoding="utf-8")
    assert check_dir(folder) == []
    policies = load_policies(folder)
    teacher = policies.resolve("t.sato", "teacher", "kita-es")
    assert teacher.files == ("default.toml", "10-kita-es.toml", "30-teachers.toml")
    assert teacher.policy.redirection.clipboard == "to-remote"
    # The explain example in the docs is what explain() prints for it (UTC = gateway zone).
    refused = explain(teacher, now=datetime(2026, 11, 25, 22, 10, tzinfo=UTC))
    shown = [line[2:] for line in DOC.splitlines() if line.startswith(("  At ", "    rule: "))]
    assert refused[1:3] == shown
    cio = policies.resolve("cio.kita", "cio", "kita-es")
    assert cio.files == ("default.toml", "10-kita-es.toml", "20-cio.toml")
    assert cio.policy.auth.second_factor == "both"
    assert policies.resolve("t.mori", "teacher", "kita-es").policy.session.max_concurrent == 2
