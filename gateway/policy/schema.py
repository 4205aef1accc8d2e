"""Every policy key: its check and its one-line meaning. policies/default.toml gives the values.

Attacker-controlled here: nothing (policy files are the board's), but a typo must never pass:
unknown sections or keys and wrong types or ranges are refused with the allowed keys or values.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.policy.units import parse_duration, parse_size

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OS_NAMES = ("linux", "windows", "macos")
WATERMARK_FIELDS = ("user", "name", "school", "datetime", "session")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-(([01]\d|2[0-3]):([0-5]\d)|24:00)$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$")


class Invalid(ValueError):
    """A value does not fit its key: the message says what was expected."""


Check = Callable[[Any], Any]  # returns the parsed value or raises Invalid


@dataclass(frozen=True, slots=True)
class Key:
    check: Check
    doc: str


def _type(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise Invalid(f"expected {what}, got {value!r}")
    if not isinstance(value, kind):
        raise Invalid(f"expected {what}, got {type(value).__name__} {value!r}")
    return value


def boolean(value: Any) -> bool:
    return bool(_type(value, bool, "true or false"))


def integer(lo: int, hi: int) -> Check:
    def check(value: Any) -> int:
        _type(value, int, f"an integer {lo}..{hi}")
        if not lo <= value <= hi:
            raise Invalid(f"expected an integer {lo}..{hi}, got {value}")
        return int(value)
    return check


def number(lo: float, hi: float) -> Check:
    def check(value: Any) -> float:
        _type(value, (int, float), f"a number {lo}..{hi}")
        if not lo <= value <= hi:
            raise Invalid(f"expected a number {lo}..{hi}, got {value}")
        return float(value)
    return check


def choice(*values: str) -> Check:
    def check(value: Any) -> str:
        if value not in values:
            raise Invalid(f"expected one of {', '.join(repr(v) for v in values)}, "
                          f"got {value!r}")
        return str(value)
    return check


def subset(*values: str) -> Check:
    def check(value: Any) -> tuple[str, ...]:
        _type(value, list, f"a list of {', '.join(repr(v) for v in values)}")
        bad = [v for v in value if v not in values]
        if bad:
            raise Invalid(f"expected only {', '.join(repr(v) for v in values)}, got {bad[0]!r}")
        return tuple(value)
    return check


def text(value: Any) -> str:
    return str(_type(value, str, "a string"))


def duration(value: Any) -> Any:
    try:
        return parse_duration(_type(value, str, "a duration string like \"15m\""))
    except ValueError as e:
        raise Invalid(str(e)) from None


def size(value: Any) -> int:
    try:
        return parse_size(_type(value, str, "a size string like \"2GiB\""))
    except ValueError as e:
        raise Invalid(str(e)) from None


def hours(value: Any) -> tuple[int, int]:
    m = _HOURS.match(_type(value, str, "hours like \"07:00-21:00\""))
    if m is None:
        raise Invalid(f"expected hours like \"07:00-21:00\", got {value!r}")
    start = int(m.group(1)) * 60 + int(m.group(2))
    end = 24 * 60 if m.group(3) == "24:00" else int(m.group(4)) * 60 + int(m.group(5))
    if end <= start:
        raise Invalid(f"the end of {value!r} must be after its start")
    return start, end


def dates(value: Any) -> tuple[date, ...]:
    _type(value, list, "a list of dates like \"2027-01-02\"")
    out = []
    for item in value:
        if isinstance(item, date):
            out.append(item)
            continue
        try:
            out.append(date.fromisoformat(_type(item, str, "a date like \"2027-01-02\"")))
        except ValueError:
            raise Invalid(f"expected a date like \"2027-01-02\", got {item!r}") from None
    return tuple(out)


def template(value: Any) -> str:
    fields = [f for _, f, _, _ in string.Formatter().parse(text(value)) if f is not None]
    bad = [f for f in fields if f not in WATERMARK_FIELDS]
    if bad:
        raise Invalid(f"unknown field {{{bad[0]}}}; allowed fields: "
                      + ", ".join("{" + f + "}" for f in WATERMARK_FIELDS))
    return str(value)


def hosts(value: Any) -> tuple[str, ...]:
    _type(value, list, "a list of \"host\" or \"host:port\"")
    for item in value:
        if not isinstance(item, str) or not _HOST.match(item):
            raise Invalid(f"expected \"host\" or \"host:port\", got {item!r}")
    return tuple(value)


def valid_until(value: Any) -> str | int:
    if value == "school-year-end":
        return "school-year-end"
    if isinstance(value, str) and re.fullmatch(r"[1-9]\d{0,3}d", value):
        return int(value[:-1])
    raise Invalid(f"expected \"school-year-end\" or a number of days like \"365d\", got "
                  f"{value!r}")


SCHEMA: dict[str, dict[str, Key]] = {
    "redirection": {
        "clipboard": Key(choice("off", "to-remote", "to-local", "both"), "clipboard direction"),
        "clipboard_max_bytes": Key(integer(0, 1024 * 1024), "largest clipboard text allowed"),
        "printing": Key(boolean, "printing to the home PC"),
        "drives": Key(boolean, "home PC drives in the desktop"),
        "devices": Key(boolean, "USB and other device redirection"),
        "file_transfer": Key(boolean, "file transfer"),
        "audio": Key(boolean, "sound from the desktop"),
    },
    "posture": {
        "antivirus_required": Key(boolean, "an antivirus product must be present"),
        "max_definitions_age_days": Key(integer(0, 365), "oldest definitions allowed (days)"),
        "realtime_required": Key(boolean, "real-time protection must be on"),
        "allowed_os": Key(subset(*OS_NAMES), "operating systems the agent may run on"),
    },
    "session": {
        "idle_timeout": Key(duration, "no input for this long ends the session"),
        "max_duration": Key(duration, "no session lasts longer"),
        "reconnect_grace": Key(duration, "a blip shorter than this resumes the session"),
        "allowed_days": Key(subset(*DAYS), "days sessions may start"),
        "allowed_hours": Key(hours, "hours sessions may start (gateway local time)"),
        "calendar_exceptions": Key(dates, "dates with no access"),
        "max_concurrent": Key(integer(1, 10), "concurrent sessions per user"),
    },
    "auth": {"second_factor": Key(choice("password", "totp", "both"), "after key and PIN")},
    "watermark": {
        "enabled": Key(boolean, "draw the watermark into the frames"),
        "template": Key(template, "watermark text"),
        "opacity": Key(number(0.02, 0.5), "watermark opacity"),
    },
    "recording": {"enabled": Key(boolean, "record sessions")},
    "workspace": {
        "session_command": Key(text, "command run in a new desktop"),
        "allowed_hosts": Key(hosts, "school systems the desktop may reach"),
        "home_quota": Key(size, "per-user home quota"),
        "stop_unattached_after": Key(duration, "stop a desktop nobody uses after"),
    },
    "keys": {"valid_until": Key(valid_until, "certificate validity")},
}
MATCH_KEYS = ("schools", "roles", "users")
