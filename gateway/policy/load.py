"""Loads the policy folder: default.toml (every key) plus narrowing files with a [match] table.

Attacker-controlled here: nothing (the board writes these files), but files are capped at 1 MiB
and every problem is reported as `<file>:<line>: <section>.<key>: expected …, got …`; the gateway
refuses to start on one and, on SIGHUP, keeps the previous policy.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.policy.access import ROLES
from gateway.policy.effective import ResolvedPolicy, build
from gateway.policy.schema import MATCH_KEYS, SCHEMA, Invalid

DEFAULT = "default.toml"
MAX_FILE_BYTES = 1024 * 1024
MAX_PROBLEMS = 50  # per file: enough to fix a file in one pass, never a flood

_PART = r'(?:[A-Za-z0-9_-]+|"[^"\\]*"|\'[^\']*\')'
_PATH = rf"{_PART}(?:\s*\.\s*{_PART})*"
_TABLE = re.compile(rf"\s*\[(?!\[)\s*({_PATH})\s*\]")
_KEY = re.compile(rf"\s*({_PATH})\s*=")
_SPLIT = re.compile(_PART)


class PolicyError(ValueError):
    """Policy files are invalid; each problem points at a file and line."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def scan(text: str) -> Iterator[tuple[int, tuple[str, ...] | None, tuple[str, ...] | None]]:
    """Per line outside multi-line strings: (line number from 1, the table a `[name]` header
    opens or None, the dotted path a `key = …` line sets or None)."""
    in_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not in_string and (m := _TABLE.match(line)):
            yield number, _parts(m[1]), None
        elif not in_string and (m := _KEY.match(line)):
            yield number, None, _parts(m[1])
        # A multi-line string may hold lines that look like keys: skip until it closes.
        if (line.count('"""') + line.count("'''")) % 2:
            in_string = not in_string


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Key path -> first line number, from a scan of the file (tomllib gives no positions).

    ("session",) is the [session] header, ("session", "idle_timeout") its key; a dotted key
    `redirection.clipboard = …` outside a table records the same path.
    """
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, header, key in scan(text):
        if header is not None:
            table = header
            lines.setdefault(table, number)
        elif key is not None:
            path = table + key
            for end in range(len(table) + 1, len(path) + 1):
                lines.setdefault(path[:end], number)
    return lines


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _SPLIT.findall(path))


@dataclass(frozen=True, slots=True)
class PolicyFile:
    name: str
    match: dict[str, tuple[str, ...]]  # {} for default.toml: it applies to everyone
    values: dict[str, dict[str, Any]]  # section -> key -> parsed value, only the keys it sets
    lines: dict[tuple[str, ...], int]

    def applies(self, user_id: str, role: str, school: str | None) -> bool:
        """Every list given must contain the subject's value; a missing list matches all."""
        wanted = {"users": user_id, "roles": role, "schools": school}
        return all(wanted[k] in v for k, v in self.match.items())

    def line(self, section: str, key: str = "") -> int:
        path = (section, key) if key else (section,)
        return self.lines.get(path) or self.lines.get((section,)) or 1


class _FileParser:
    """Checks one parsed file against the schema, collecting every problem with its line."""

    def __init__(self, name: str, lines: dict[tuple[str, ...], int], *, complete: bool) -> None:
        self.file = PolicyFile(name, {}, {}, lines)
        self.complete = complete
        self.problems: list[str] = []

    def fail(self, section: str, key: str, message: str) -> None:
        where = f"{section}.{key}" if key else f"[{section}]"
        self.problems.append(f"{self.file.name}:{self.file.line(section, key)}: {where}: "
                             f"{message}")

    def run(self, raw: dict[str, Any]) -> None:
        for section, body in raw.items():
            if isinstance(body, list) and section in SCHEMA:
                self.fail(section, "", f"expected a [{section}] table, got [[{section}]]")
            elif not isinstance(body, dict):
                self.fail(section, "", f"{section!r} is outside any table; put it under "
                          + (", ".join(f"[{s}]" for s, keys in SCHEMA.items() if section in keys)
                             or "its [section]"))
            elif section == "match":
                self.match(body)
            elif section not in SCHEMA:
                allowed = ", ".join(SCHEMA) + ("" if self.complete else ", match")
                self.fail(section, "", f"unknown section [{section}]; allowed sections: "
                          f"{allowed}")
            else:
                self.section(section, body)
        if self.complete:
            self.missing()
        elif not self.file.match and not self.problems:
            self.problems.append(f"{self.file.name}:1: a narrowing file needs a [match] table "
                                 f"({', '.join(MATCH_KEYS)}); only {DEFAULT} applies to all")

    def section(self, section: str, body: dict[str, Any]) -> None:
        for key, value in body.items():
            spec = SCHEMA[section].get(key)
            if spec is None:
                self.fail(section, key, f"unknown key {key!r} in [{section}]; allowed keys: "
                          + ", ".join(SCHEMA[section]))
                continue
            try:
                self.file.values.setdefault(section, {})[key] = spec.check(value)
            except Invalid as e:
                self.fail(section, key, str(e))

    def match(self, body: dict[str, Any]) -> None:
        if self.complete:
            self.fail("match", "", f"{DEFAULT} applies to everyone: put [match] in a narrower "
                      "file")
            return
        for key, value in body.items():
            if key not in MATCH_KEYS:
                self.fail("match", key, f"unknown key {key!r} in [match]; allowed keys: "
                          + ", ".join(MATCH_KEYS))
            elif not (isinstance(value, list) and value
                      and all(isinstance(v, str) and v for v in value)):
                self.fail("match", key, f"expected a non-empty list of names, got {value!r:.60}")
            elif key == "roles" and (bad := [r for r in value if r not in ROLES]):
                self.fail("match", key, f"expected roles among {', '.join(ROLES)}, got "
                          f"{bad[0]!r:.60}")
            else:
                self.file.match[key] = tuple(value)

    def missing(self) -> None:
        for section, keys in SCHEMA.items():
            for key in keys:
                if key not in self.file.values.get(section, {}):
                    shipped = shipped_setting(section, key)
                    hint = f" (this version ships `{shipped}` under [{section}]: " \
                        "`staffroom policy upgrade` adds it)" if shipped else ""
                    self.problems.append(f"{self.file.name}:{self.file.line(section)}: "
                                         f"{section}.{key}: missing; {DEFAULT} must set every "
                                         f"key{hint}")


# The repository's own default.toml (what `staffroom init` copies): after an upgrade that adds
# a key, an older DATA_DIR's copy lacks it, and the error says what to add.
SHIPPED_DEFAULT = Path(__file__).resolve().parents[2] / "policies" / DEFAULT


def shipped_lines(text: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """Per (section, key) of a default.toml like the shipped one: the comment block right above
    the key, then its `key = value` line."""
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    lines = text.splitlines()
    section = ""
    for number, header, key in scan(text):
        if header is not None:
            section = ".".join(header)
            continue
        above, n = [], number - 1
        while n > 0 and lines[n - 1].strip().startswith("#"):
            above.insert(0, lines[n - 1])
            n -= 1
        if key is not None and len(key) == 1:
            out[(section, key[0])] = (*above, lines[number - 1])
    return out


def shipped_setting(section: str, key: str) -> str | None:
    """The `key = value` line of the shipped default.toml's [section], if there is one."""
    try:
        found = shipped_lines(SHIPPED_DEFAULT.read_text(encoding="utf-8")).get((section, key))
    except OSError:
        return None
    return found[-1].strip() if found else None


def parse_file(path: Path, *, complete: bool) -> PolicyFile:
    """One file, checked against the schema; PolicyError lists every problem found in it."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise PolicyError(f"{path.name}:1: larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        text = path.read_bytes().decode("utf-8")
        raw = tomllib.loads(text)
    except UnicodeDecodeError:
        raise PolicyError(f"{path.name}:1: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        # tomllib's message already ends "(at line N, column M)".
        line = re.search(r"at line (\d+)", str(e))
        raise PolicyError(f"{path.name}:{line[1] if line else 1}: TOML syntax error: {e}") \
            from None
    parser = _FileParser(path.name, key_lines(text), complete=complete)
    parser.run(raw)
    if parser.problems:
        raise PolicyError(*parser.problems[:MAX_PROBLEMS])
    return parser.file


@dataclass(frozen=True, slots=True)
class PolicySet:
    files: tuple[PolicyFile, ...]  # default.toml first, then the others in name order

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)

    def resolve(self, user_id: str, role: str, school: str | None) -> ResolvedPolicy:
        """The policy for one subject: default.toml, then each matching file; later wins."""
        merged: dict[str, dict[str, Any]] = {}
        provenance: dict[str, tuple[str, int]] = {}
        applied = []
        for i, f in enumerate(self.files):
            if i and not f.applies(user_id, role, school):
                continue
            applied.append(f.name)
            for section, keys in f.values.items():
                for key, value in keys.items():
                    merged.setdefault(section, {})[key] = value
                    provenance[f"{section}.{key}"] = (f.name, f.line(section, key))
        try:
            policy = build(merged)
        except (ValueError, TypeError) as e:  # cross-field checks in the dataclasses
            raise PolicyError(f"{', '.join(applied)}: policy for {user_id or 'everyone'}: {e}") \
                from None
        return ResolvedPolicy(policy, provenance, tuple(applied))


def policy_files(directory: Path) -> list[Path]:
    """The narrowing files in the order they apply: by name, hidden and editor files skipped."""
    return sorted(p for p in directory.glob("*.toml")
                  if p.name != DEFAULT and not p.name.startswith(".") and p.is_file())


def load_policies(directory: Path | str) -> PolicySet:
    """Every file checked (all problems reported at once), or PolicyError."""
    directory = Path(directory)
    default = directory / DEFAULT
    if not default.is_file():
        raise PolicyError(f"{directory}: {DEFAULT} is missing (it must set every key)")
    files, problems = [], []
    for path, complete in [(default, True)] + [(p, False) for p in policy_files(directory)]:
        try:
            files.append(parse_file(path, complete=complete))
        except PolicyError as e:
            problems += e.problems
    if problems:
        raise PolicyError(*problems)
    policies = PolicySet(tuple(files))
    policies.resolve("", "teacher", None)  # the defaults alone must build
    return policies


def check_dir(directory: Path | str) -> list[str]:
    """Every problem in a policy folder, one line each (empty = valid): `staffroom policy check`."""
    try:
        load_policies(directory)
    except PolicyError as e:
        return list(e.problems)
    except OSError as e:
        return [f"{directory}: {e.strerror or e}"]
    return []
