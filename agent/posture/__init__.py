"""The home PC's posture: which antivirus runs and how fresh its definitions are.

`collect_posture()` picks the collector for this OS and returns the PostureReport the agent signs
into the login transcript; `checks.posture_checks()` turns it into the lines `staffroom agent
check` prints. Collecting runs commands and reads files (blocking): call it from an executor.
"""

from __future__ import annotations

import platform
import socket
import sys
from datetime import datetime
from pathlib import Path

from gateway.wire.posture import AntivirusState, PostureReport, clip

__all__ = ["collect_posture", "current_os"]


def current_os() -> str:
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def _os_version(os_name: str) -> str:
    if os_name == "macos":
        return platform.mac_ver()[0]
    if os_name == "windows":
        return platform.version()
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", platform.release())
    except OSError:
        return platform.release()


def collect_posture(now: datetime, *, os_name: str | None = None,
                    clamav_config: Path | None = None) -> PostureReport:
    """This PC's report. os_name forces a collector (tests; "linux" reads ClamAV anywhere);
    clamav_config points at a freshclam.conf other than /etc/clamav/freshclam.conf."""
    os_name = os_name or current_os()
    antivirus: tuple[AntivirusState, ...]
    if os_name == "linux":
        from agent.posture.clamav import collect_clamav
        antivirus = collect_clamav(clamav_config)
    elif os_name == "windows":
        from agent.posture.windows import collect_windows
        antivirus = collect_windows()
    elif os_name == "macos":
        from agent.posture.macos import collect_macos
        antivirus = collect_macos()
    else:
        raise ValueError(f"unknown operating system {os_name!r}")
    return PostureReport(os=os_name, os_version=clip(_os_version(os_name)),
                         hostname=clip(socket.gethostname()), antivirus=antivirus,
                         collected_at=now)
