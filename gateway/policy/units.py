"""Durations ("45s", "15m", "1h30m", "8h", "2d") and sizes ("500MiB", "2GiB") in policy files.

Digit counts are bounded so no value can overflow a timedelta or build a huge integer.
"""

from __future__ import annotations

import re
from datetime import timedelta

MAX_DURATION = timedelta(days=366)
_DURATION = re.compile(
    r"(?:([0-9]{1,4})d)?(?:([0-9]{1,5})h)?(?:([0-9]{1,6})m)?(?:([0-9]{1,7})s)?")
_SIZE = re.compile(r"([0-9]{1,7}) ?(B|KiB|MiB|GiB|TiB)")
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


def parse_duration(text: str) -> timedelta:
    """"1h30m" -> 1:30:00. Units d, h, m, s in that order, each at most once; no spaces."""
    m = _DURATION.fullmatch(text)
    if m is None or not any(m.groups()):
        raise ValueError(f'expected a duration like "45s", "15m", "1h30m" or "8h", got {text!r}')
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


def parse_size(text: str) -> int:
    """"2GiB" -> 2147483648. Binary units only: "2GB" is ambiguous and refused."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f'expected a size like "500MiB" or "2GiB", got {text!r}')
    return int(m[1]) * _UNITS[m[2]]


def format_duration(value: timedelta) -> str:
    """timedelta(hours=1, minutes=30) -> "1h30m": the policy file's own notation."""
    rest = int(value.total_seconds())
    parts = []
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= seconds:
            parts.append(f"{rest // seconds}{unit}")
            rest %= seconds
    return "".join(parts) or "0s"
