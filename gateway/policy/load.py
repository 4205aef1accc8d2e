"""Loads the policy folder: default.toml (every key) plus narrowing files with [match].

Errors read `<file>:<line>: <section>.<key>: expected …, got …`; the gateway refuses to start on
one and, on SIGHUP, keeps the previous policy.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.policy.effective import ResolvedPolicy, build
from gateway.policy.schema import MATCH_KEYS, SCHEMA, Invalid

_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


class PolicyError(ValueError):
    """A policy file is invalid; the message points at the file and line."""


def key_lines(text: str) -> dict[tuple[str, str], int]:
    """(table, key) -> line number, from a scan of the file (tomllib gives no positions)."""
    lines: dict[tuple[str, str], int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if m := _TABLE.match(line):
            table = m.group(1)
            lines.setdefault((table, ""), number)
        elif m := _KEY.match(line):
            lines.setdefault((table, m.group(1)), number)
    return lines


@dataclass(frozen=True, slots=True)
class PolicyFile:
    name: str
    match: dict[str, tuple[str, ...]]
    values: dict[str, dict[str, Any]]  # parsed values of the keys this file sets
    lines: dict[tuple[str, str], int]

    def applies(self, user_id: str, role: str, school: str | None) -> bool:
        wanted = {"users": user_id, "roles": role, "schools": school}
        return all(wanted[k] in v for k, v in self.match.items())


def parse_file(path: Path, *, complete: bool) -> PolicyFile:
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"{path.name}: {e}") from None
    lines = key_lines(text)

    def fail(section: str, key: str, message: str) -> PolicyError:
        line = lines.get((section, key)) or lines.get((section, "")) or 1
        where = f"{section}.{key}" if key else f"[{section}]"
        return PolicyError(f"{path.name}:{line}: {where}: {message}")

    match: dict[str, tuple[str, ...]] = {}
    values: dict[str, dict[str, Any]] = {}
    for section, body in raw.items():
        if section == "match" and not complete:
            for key, value in body.items():
                if key not in MATCH_KEYS:
                    raise fail("match", key, f"unknown key; allowed keys: {', '.join(MATCH_KEYS)}")
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise fail("match", key, "expected a list of strings")
                match[key] = tuple(value)
            continue
        if section not in SCHEMA or not isinstance(body, dict):
            allowed = ", ".join(SCHEMA) + ("" if complete else ", match")
            raise fail(section, "", f"unknown section; allowed sections: {allowed}")
        for key, value in body.items():
            spec = SCHEMA[section].get(key)
            if spec is None:
                raise fail(section, key, f"unknown key {key!r} in [{section}]; allowed keys: "
                           + ", ".join(SCHEMA[section]))
            try:
                values.setdefault(section, {})[key] = spec.check(value)
            except Invalid as e:
                raise fail(section, key, str(e)) from None
    if complete:
        for section, keys in SCHEMA.items():
            for key in keys:
                if key not in values.get(section, {}):
                    raise PolicyError(f"{path.name}: {section}.{key} is missing: default.toml "
                                      "must set every key")
    elif not match:
        raise PolicyError(f"{path.name}:1: a narrowing policy needs a [match] table (schools, "
                          "roles or users)")
    return PolicyFile(path.name, match, values, lines)


@dataclass(frozen=True, slots=True)
class PolicySet:
    files: tuple[PolicyFile, ...]  # default.toml first, then the others in name order

    def resolve(self, user_id: str, role: str, school: str | None) -> ResolvedPolicy:
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
                    provenance[f"{section}.{key}"] = (f.name, f.lines.get((section, key), 1))
        try:
            policy = build(merged)
        except ValueError as e:  # cross-field checks in the dataclasses
            raise PolicyError(f"policy for {user_id}: {e}") from None
        return ResolvedPolicy(policy, provenance, tuple(applied))


def load_policies(directory: Path) -> PolicySet:
    default = directory / "default.toml"
    if not default.is_file():
        raise PolicyError(f"{directory}: default.toml is missing")
    files = [parse_file(default, complete=True)]
    files += [parse_file(p, complete=False) for p in sorted(directory.glob("*.toml"))
              if p.name != "default.toml"]
    policies = PolicySet(tuple(files))
    policies.resolve("", "teacher", None)  # the defaults alone must build
    return policies


def check_dir(directory: Path) -> list[str]:
    """Every problem in a policy folder (empty = valid), for `staffroom policy check`."""
    try:
        load_policies(directory)
    except PolicyError as e:
        return [str(e)]
    except OSError as e:
        return [f"{directory}: {e.strerror}"]
    return []
