"""Report builders shared by the posture tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gateway.wire.posture import AntivirusState, PostureReport

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def av(product: str = "ClamAV 1.4.6", *, enabled: bool = True, realtime: bool | None = None,
       age: timedelta | None = timedelta(days=1), up_to_date: bool | None = None,
       updater_running: bool | None = None, version: str | None = "daily 27832") -> AntivirusState:
    return AntivirusState(product=product, enabled=enabled, realtime=realtime,
                          definitions_time=None if age is None else NOW - age,
                          definitions_version=version, source="test", up_to_date=up_to_date,
                          updater_running=updater_running)


def report(*products: AntivirusState, os: str = "linux") -> PostureReport:
    return PostureReport(os=os, os_version="Debian GNU/Linux 12 (bookworm)", hostname="home-pc",
                         antivirus=products, collected_at=NOW)


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    """Poll a condition until a deadline (never a bare sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
