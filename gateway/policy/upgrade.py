"""`staffroom policy upgrade`: add to an older default.toml the keys this version ships.

default.toml must set every key, so an upgrade that adds one (display.max_frame_rate, say) stops
an older DATA_DIR's gateway at start. This writes the missing `key = value` lines, with the
comment above each in the shipped file, at the end of their table (or a new table at the end),
and leaves every other byte of the admin's file as it was: their own values and comments stay.

Pure: text in, text out. Attacker-controlled: nothing (the board's own files); the merged text
is parsed again and must hold every value the admin's did, or nothing is written.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from gateway.policy.load import scan, shipped_lines
from gateway.policy.schema import SCHEMA


class UpgradeError(ValueError):
    """The admin's default.toml cannot be merged by hand-safe text edits; the message says what
    to add instead."""


@dataclass(frozen=True, slots=True)
class Addition:
    section: str
    key: str
    lines: tuple[str, ...]  # the shipped comment block above the key, then `key = value`

    @property
    def setting(self) -> str:
        return self.lines[-1].strip()


def missing(admin_text: str, shipped_text: str) -> list[Addition]:
    """The settings the schema requires that ``admin_text`` lacks, in the shipped order."""
    try:
        have = tomllib.loads(admin_text)
    except tomllib.TOMLDecodeError as e:
        raise UpgradeError(f"default.toml is not valid TOML ({e}): fix it first, then run "
                           "`staffroom policy upgrade` again.") from None
    shipped = shipped_lines(shipped_text)
    out = []
    for (section, key), lines in shipped.items():
        if key in SCHEMA.get(section, {}) and key not in _table(have, section):
            out.append(Addition(section, key, lines))
    return out


def merge(admin_text: str, additions: list[Addition]) -> str:
    """``admin_text`` with each addition at the end of its table; a table the file lacks is
    added at the end. Raises UpgradeError where the file sets a table another way (dotted keys,
    an inline table), which a line cannot safely be added to."""
    lines = admin_text.splitlines()
    have = tomllib.loads(admin_text)
    headers = _headers(admin_text)
    inserts: dict[int, list[str]] = {}  # before line index -> lines
    appended: dict[str, list[str]] = {}
    for add in additions:
        if add.section in headers:
            end = _table_end(lines, headers[add.section], headers)
            inserts.setdefault(end, []).extend(add.lines)
        elif add.section in have:
            raise UpgradeError(f"default.toml sets [{add.section}] without a `[{add.section}]` "
                               f"header: add `{add.setting}` to it yourself.")
        else:
            appended.setdefault(add.section, []).extend(add.lines)
    out: list[str] = []
    for i, line in enumerate(lines):
        out.extend(inserts.get(i, ()))
        out.append(line)
    out.extend(inserts.get(len(lines), ()))
    for section, body in appended.items():
        while out and not out[-1].strip():
            out.pop()
        out.extend(["", f"[{section}]", *body])
    newline = "\r\n" if "\r\n" in admin_text else "\n"  # a file edited on Windows stays so
    merged = newline.join(out) + newline
    _check(have, merged, additions)
    return merged


def _table(doc: dict[str, object], section: str) -> dict[str, object]:
    value = doc.get(section)
    return value if isinstance(value, dict) else {}


def _headers(text: str) -> dict[str, int]:
    """Table name -> the index of its `[name]` line."""
    found: dict[str, int] = {}
    for number, header, _ in scan(text):
        if header is not None:
            found.setdefault(".".join(header), number - 1)
    return found


def _table_end(lines: list[str], header: int, headers: dict[str, int]) -> int:
    """Where a line added to the table whose header is at ``header`` goes: after its last
    setting, before the blank lines and the comment block that lead into the next table."""
    end = min((i for i in headers.values() if i > header), default=len(lines))
    if end < len(lines):
        while end > header + 1 and lines[end - 1].strip().startswith("#"):
            end -= 1  # the next table's own heading comment
    while end > header + 1 and not lines[end - 1].strip():
        end -= 1
    return end


def _check(before: dict[str, object], merged: str, additions: list[Addition]) -> None:
    """The merged text must parse, keep every value the admin set, and add each addition."""
    try:
        after = tomllib.loads(merged)
    except tomllib.TOMLDecodeError as e:  # pragma: no cover - a bug here, not the admin's
        raise UpgradeError(f"the merged default.toml would not parse ({e}); nothing was "
                           "written: add the missing lines yourself.") from None
    for section, table in before.items():
        kept = after.get(section)
        if isinstance(table, dict) and isinstance(kept, dict):
            lost = [k for k, v in table.items() if kept.get(k) != v]
        else:
            lost = [] if kept == table else [section]
        if lost:  # pragma: no cover - a bug here, not the admin's
            raise UpgradeError(f"merging would change [{section}] {lost[0]}; nothing was "
                               "written: add the missing lines yourself.")
    absent = [a for a in additions if a.key not in _table(after, a.section)]
    if absent:  # pragma: no cover - a bug here, not the admin's
        raise UpgradeError(f"merging did not add {absent[0].section}.{absent[0].key}; nothing "
                           f"was written: add `{absent[0].setting}` yourself.")
