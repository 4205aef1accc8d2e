"""Durations ("45s", "15m", "1h30m", "8h", "2d") and sizes ("500MiB", "2GiB") in policy files."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SIZE = re.compile(r"^(\d+)\s*(B|KiB|MiB|GiB|TiB)$")
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise ValueError(f"expected a duration like \"45s\", \"15m\", \"1h30m\" or \"8h\", "
                         f"got {text!r}")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


def parse_size(text: str) -> int:
    m = _SIZE.match(text.strip())
    if m is None:
        raise ValueError(f"expected a size like \"500MiB\" or \"2GiB\", got {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]
