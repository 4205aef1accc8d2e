"""macOS: XProtect, the built-in malware scanner, as the antivirus product.

Untrusted input here: command output and plist files on the home PC; reads are capped (1 MiB
output, 1 MiB plist), at most 2,000 install-history entries are looked at, strings are clipped.

The version comes from `xprotect version` (macOS 15+, which keeps the active bundle under
/var/protected/xprotect) or the bundle's Info.plist CFBundleShortVersionString (any macOS). The date
comes from `system_profiler SPInstallHistoryDataType -json`: XProtect updates are installed as
"XProtectPlistConfigData" (the rules; "XProtectPayloads" is the Remediator app, reported for
context only). macOS 15.2+ may update XProtect over iCloud without an install-history entry; then
the bundle's modification time is the fallback date. XProtect is always on and checks code when it
is launched, so it is reported enabled with real-time scanning; updates are the OS's job.
"""

from __future__ import annotations

import json
import plistlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.wire.posture import AntivirusState, clip

BUNDLES = (Path("/var/protected/xprotect/XProtect.bundle"),
           Path("/Library/Apple/System/Library/CoreServices/XProtect.bundle"))
RULES_PACKAGE = "XProtectPlistConfigData"
MAX_OUTPUT = 1024 * 1024
MAX_ENTRIES = 2000
_VERSION_LINE = re.compile(r"(?:^|\n)\s*(?:XProtect\s+)?(?:Version:?\s*)?(\d{1,9})\s*(?:\n|$)",
                           re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Install:
    name: str
    version: str
    date: datetime


def parse_xprotect_version(text: str) -> str | None:
    """`xprotect version` output: the first "Version: 5287" (or bare "5287") line."""
    m = _VERSION_LINE.search(text[:4096])
    return m.group(1) if m else None


def parse_info_plist(data: bytes) -> str | None:
    """CFBundleShortVersionString of XProtect.bundle/Contents/Info.plist (XML or binary)."""
    try:
        plist = plistlib.loads(data[:MAX_OUTPUT])
    except (plistlib.InvalidFileException, ValueError, OverflowError):
        return None
    version = plist.get("CFBundleShortVersionString") if isinstance(plist, dict) else None
    return clip(version) if isinstance(version, str) and version else None


def parse_install_history(text: str) -> tuple[Install, ...]:
    """Entries of `system_profiler SPInstallHistoryDataType -json` whose name is XProtect's."""
    try:
        data = json.loads(text[:MAX_OUTPUT])
    except ValueError:
        return ()
    items = data.get("SPInstallHistoryDataType") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return ()
    found = []
    for item in items[:MAX_ENTRIES]:
        if not isinstance(item, dict) or not str(item.get("_name", "")).startswith("XProtect"):
            continue
        when = _iso(item.get("install_date"))
        if when is not None:
            found.append(Install(clip(str(item["_name"])), clip(str(item.get("install_version",
                                                                             ""))), when))
    return tuple(found)


def rules_installed_at(history: tuple[Install, ...], version: str | None) -> datetime | None:
    """When these XProtect rules arrived: the entry for this version, else the latest rules."""
    rules = [i for i in history if i.name == RULES_PACKAGE]
    exact = [i.date for i in rules if version and i.version == version]
    dates = exact or [i.date for i in rules]
    return max(dates) if dates else None


def xprotect_state(version: str | None, installed: datetime | None,
                   source: str) -> tuple[AntivirusState, ...]:
    if version is None:
        return ()
    return (AntivirusState(product="XProtect", enabled=True, realtime=True,
                           definitions_time=installed, definitions_version=version,
                           source=source),)


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _run(args: list[str]) -> str:
    exe = shutil.which(args[0])
    if exe is None:
        return ""
    try:
        out = subprocess.run([exe, *args[1:]], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout[:MAX_OUTPUT].decode("utf-8", "replace") if out.returncode == 0 else ""


def collect_macos() -> tuple[AntivirusState, ...]:
    if sys.platform != "darwin":
        raise OSError("XProtect is read only on macOS")
    version, source, bundle_time = parse_xprotect_version(_run(["xprotect", "version"])), \
        "xprotect version", None
    for bundle in BUNDLES:
        plist = bundle / "Contents" / "Info.plist"
        try:
            data = plist.read_bytes()[:MAX_OUTPUT]
            mtime = datetime.fromtimestamp(plist.stat().st_mtime, UTC)
        except OSError:
            continue
        if version is None:
            version, source = parse_info_plist(data), str(bundle)
        bundle_time = bundle_time or mtime
        break
    history = parse_install_history(_run(["system_profiler", "SPInstallHistoryDataType",
                                          "-json"]))
    return xprotect_state(version, rules_installed_at(history, version) or bundle_time, source)
