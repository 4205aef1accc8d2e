"""The rules policy keys are read by: type, allowed values or range, as small Rule values.

Attacker-controlled here: nothing (policy files are the board's), but a typo must never pass:
each rule refuses with "expected …, got …", long values cut, digit counts and lengths bounded.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from gateway.net.address import not_one_host
from gateway.policy.units import MAX_DURATION, parse_duration, parse_size

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OS_NAMES = ("linux", "windows", "macos")
WATERMARK_FIELDS = ("user", "name", "school", "datetime", "session")
MIB = 1024 * 1024
_HOURS = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-(?:([01][0-9]|2[0-3]):([0-5][0-9])|(24):00)")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_IPV6 = re.compile(r"^\[[0-9A-Fa-f:.]{2,45}\]$")


class Invalid(ValueError):
    """A value does not fit its key: the message says what was expected and what was given."""


@dataclass(frozen=True, slots=True)
class Rule:
    """How one key is read: `expects` is the human description ("an integer 1..10", …) used in
    errors and docs; `parse` turns the TOML value into the effective value or raises Invalid."""

    expects: str
    parse: Callable[[Any], Any]


def _shown(value: Any) -> str:
    """A TOML value as an error message shows it (bounded: a long string is cut)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _need(value: Any, kind: type | tuple[type, ...], expects: str) -> Any:
    # bool is an int in Python but never a number in a policy file.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise Invalid(f"expected {expects}, got {_shown(value)}")
    return value


def boolean() -> Rule:
    return Rule("true or false", lambda v: bool(_need(v, bool, "true or false")))


def integer(lo: int, hi: int, unit: str = "") -> Rule:
    expects = f"an integer {lo}..{hi}{unit}"

    def parse(value: Any) -> int:
        if not lo <= _need(value, int, expects) <= hi:
            raise Invalid(f"expected {expects}, got {value}")
        return int(value)
    return Rule(expects, parse)


def number(lo: float, hi: float) -> Rule:
    expects = f"a number {lo}..{hi}"

    def parse(value: Any) -> float:
        if not lo <= _need(value, (int, float), expects) <= hi:  # nan fails too
            raise Invalid(f"expected {expects}, got {value}")
        return float(value)
    return Rule(expects, parse)


def choice(*values: str) -> Rule:
    expects = "one of " + ", ".join(f'"{v}"' for v in values)

    def parse(value: Any) -> str:
        if not isinstance(value, str) or value not in values:
            raise Invalid(f"expected {expects}, got {_shown(value)}")
        return value
    return Rule(expects, parse)


def subset(*values: str) -> Rule:
    expects = "a list of " + ", ".join(f'"{v}"' for v in values)

    def parse(value: Any) -> tuple[str, ...]:
        for item in _need(value, list, expects):
            if not isinstance(item, str) or item not in values:
                raise Invalid(f"expected {expects}, got {_shown(item)} in the list")
        return tuple(dict.fromkeys(value))  # duplicates are harmless: drop them, keep order
    return Rule(expects, parse)


def command() -> Rule:
    expects = 'a command line like "openbox-session"'

    def parse(value: Any) -> str:
        # The workspace splits it with shlex: an unbalanced quote must fail here, not at login.
        try:
            words = shlex.split(_need(value, str, expects))
        except ValueError as e:
            raise Invalid(f"expected {expects}, got {_shown(value)} ({e})") from None
        if not words or "\0" in value:
            raise Invalid(f"expected {expects}, got {_shown(value)}")
        return str(value)
    return Rule(expects, parse)


def duration(lo: timedelta = timedelta(0), hi: timedelta = MAX_DURATION) -> Rule:
    expects = 'a duration like "45s", "15m", "8h" or "1h30m"'
    if lo:
        expects += f" of at least {lo.total_seconds():.0f}s"

    def parse(value: Any) -> timedelta:
        try:
            parsed = parse_duration(_need(value, str, expects))
        except ValueError:
            raise Invalid(f"expected {expects}, got {_shown(value)}") from None
        if not lo <= parsed <= hi:
            raise Invalid(f"expected {expects} (at most {hi.days} days), got {_shown(value)}")
        return parsed
    return Rule(expects, parse)


def size(hi: int) -> Rule:
    expects = 'a size like "500MiB" or "2GiB"'

    def parse(value: Any) -> int:
        try:
            parsed = parse_size(_need(value, str, expects))
        except ValueError:
            raise Invalid(f"expected {expects}, got {_shown(value)}") from None
        if parsed > hi:
            raise Invalid(f"expected {expects} up to {hi // 1024**4}TiB, got {_shown(value)}")
        return parsed
    return Rule(expects, parse)


def hours() -> Rule:
    expects = 'hours like "07:00-21:00" (start before end; "00:00-24:00" is all day)'

    def parse(value: Any) -> tuple[int, int]:
        m = _HOURS.fullmatch(_need(value, str, expects))
        if m is None:
            raise Invalid(f"expected {expects}, got {_shown(value)}")
        start = int(m[1]) * 60 + int(m[2])
        end = 24 * 60 if m[5] else int(m[3]) * 60 + int(m[4])
        if end <= start:  # no overnight windows: a start time belongs to one calendar day
            raise Invalid(f"expected {expects}, got {_shown(value)} (ends before it starts)")
        return start, end
    return Rule(expects, parse)


def dates() -> Rule:
    expects = 'a list of dates like "2027-01-04"'

    def parse(value: Any) -> tuple[date, ...]:
        out = []
        for item in _need(value, list, expects):
            # TOML has bare dates too; a datetime would never equal a day, so it is refused.
            if isinstance(item, date) and not isinstance(item, datetime):
                out.append(item)
                continue
            try:
                out.append(date.fromisoformat(_need(item, str, expects)))
            except (ValueError, Invalid):
                raise Invalid(f"expected {expects}, got {_shown(item)} in the list") from None
        return tuple(sorted(set(out)))
    return Rule(expects, parse)


def template() -> Rule:
    fields = ", ".join("{" + f + "}" for f in WATERMARK_FIELDS)
    expects = f"text with the fields {fields}"

    def parse(value: Any) -> str:
        try:
            parts = list(string.Formatter().parse(_need(value, str, expects)))
        except ValueError as e:  # "{user" or a lone "}"
            raise Invalid(f"expected {expects}, got {_shown(value)} ({e})") from None
        for _, field, spec, conversion in parts:
            if field is None:
                continue
            if field not in WATERMARK_FIELDS:
                raise Invalid(f"unknown field {{{field}}}; allowed fields: {fields}")
            if spec or conversion:  # plain fields only: no attribute tricks, no padding
                raise Invalid(f"expected {expects}, got {_shown(value)} (plain fields only)")
        return value
    return Rule(expects, parse)


# A desktop relays at most this many destinations (gateway.workspace.egress.MAX_RULES): a list
# the desktop could not take is refused here, when the file is loaded, not at a teacher's login.
MAX_HOSTS = 64


def hosts() -> Rule:
    expects = 'a list of "host" or "host:port"'

    def parse(value: Any) -> tuple[str, ...]:
        for item in _need(value, list, expects):
            if not (isinstance(item, str) and _is_host(item)):
                raise Invalid(f"expected {expects}, got {_shown(item)} in the list")
            if _not_one_host(item):
                raise Invalid(f"{_shown(item)} is not a single host (an unspecified or "
                              "multicast address)")
        unique = tuple(dict.fromkeys(value))
        if len(unique) > MAX_HOSTS:
            raise Invalid(f"expected at most {MAX_HOSTS} hosts, got {len(unique)}")
        return unique
    return Rule(expects, parse)


def _not_one_host(entry: str) -> bool:
    host = entry[1:].partition("]")[0] if entry.startswith("[") else entry.rpartition(":")[0] \
        if entry.count(":") == 1 else entry
    return not_one_host(host)


def url() -> Rule:
    expects = 'an http(s) URL like "https://school.example/" or ""'

    def parse(value: Any) -> str:
        text = _need(value, str, expects)
        if text == "":
            return text
        scheme, sep, rest = text.partition("://")
        host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        if host.rsplit("@", 1)[-1] != host or len(text) > 2000 or not sep \
                or scheme.lower() not in ("http", "https") or not _is_host(host) \
                or any(c.isspace() or ord(c) < 32 for c in text):
            raise Invalid(f"expected {expects}, got {_shown(value)}")
        return text
    return Rule(expects, parse)


def _is_host(text: str) -> bool:
    """host, host:port, [v6] or [v6]:port; names by DNS label rules (no regex backtracking)."""
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text.partition("]")
        host += "]"
        if rest and not rest.startswith(":"):
            return False
        port = rest[1:] if rest else ""
        if not _IPV6.fullmatch(host) or (rest and not port):
            return False
    elif ":" in text:
        host, port = text.rsplit(":", 1)
        if not port:
            return False
    if port and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        return False
    if host.startswith("["):
        return True
    labels = host.removesuffix(".").split(".")
    return 0 < len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def validity() -> Rule:
    expects = '"school-year-end" or a number of days like "365d" (1..3650)'

    def parse(value: Any) -> str | int:
        if value == "school-year-end":
            return "school-year-end"
        if isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{0,3}d", value) and \
                int(value[:-1]) <= 3650:
            return int(value[:-1])
        raise Invalid(f"expected {expects}, got {_shown(value)}")
    return Rule(expects, parse)


