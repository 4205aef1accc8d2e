"""Windows: antivirus state from Security Center (every registered product) and Defender.

Untrusted input here: PowerShell's JSON output (anything registered with Security Center names
itself); output is capped at 1 MiB, at most 16 products are kept and every string is clipped.

Security Center's productState packs three bytes, 0xPPSSDD (undocumented by Microsoft, stable since
Vista; e.g. 397568 = 0x061100 is Defender on and current):
  PP  which providers the product covers (0x04 antivirus, 0x02 auto-update, ...); ignored here;
  SS  scanner: 0x10 on, 0x11 on but snoozed, 0x00 off, 0x01 off/expired -> enabled iff SS & 0x10;
  DD  definitions: 0x00 up to date, 0x10 out of date -> up_to_date iff DD & 0x10 == 0.
Security Center has no definitions date, so third-party products carry only up_to_date; Defender's
own status (Get-MpComputerStatus) adds the date, version and real-time flag.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from gateway.wire.posture import MAX_PRODUCTS, AntivirusState, clip

MAX_OUTPUT = 1024 * 1024
SECURITY_CENTER = ("Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct "
                   "| ConvertTo-Json")
DEFENDER = "Get-MpComputerStatus | ConvertTo-Json"
NEVER_BEFORE_YEAR = 1990
_PS5_DATE = re.compile(r"/Date\((-?\d{1,15})([+-]\d{4})?\)/")


class WindowsFormatError(ValueError):
    """PowerShell printed something that is not the JSON we asked for."""


@dataclass(frozen=True, slots=True)
class WscProduct:
    name: str
    enabled: bool
    up_to_date: bool
    defender: bool  # Microsoft's own product: Get-MpComputerStatus describes it in detail
    timestamp: datetime | None  # when the product last reported to Security Center


@dataclass(frozen=True, slots=True)
class DefenderStatus:
    antivirus_enabled: bool
    realtime: bool | None
    signature_time: datetime | None
    signature_version: str | None
    up_to_date: bool | None = None  # not DefenderSignaturesOutOfDate


def decode_product_state(state: int) -> tuple[bool, bool]:
    """(enabled, up_to_date) from Security Center's productState (see the module docstring)."""
    if not 0 <= state <= 0xFFFFFF:
        raise WindowsFormatError(f"productState {state} out of range")
    return bool((state >> 8) & 0x10), not (state & 0x10)


def parse_ps_date(value: Any) -> datetime | None:
    """A DateTime as ConvertTo-Json writes it: "/Date(ms)/" (Windows PowerShell 5.1, UTC ms), an
    ISO 8601 string (PowerShell 7; a naive one is the PC's local time) or, for a DateTime with
    extra properties, {"value": ..., "DateTime": ...}."""
    if isinstance(value, dict):
        value = value.get("value")
    if not isinstance(value, str) or len(value) > 64:
        return None
    m = _PS5_DATE.fullmatch(value.strip())
    try:
        if m:
            parsed = datetime.fromtimestamp(int(m.group(1)) / 1000, UTC)
        else:
            parsed = datetime.fromisoformat(value.strip())
            parsed = parsed if parsed.tzinfo else parsed.astimezone()
    except (ValueError, OverflowError, OSError):
        return None
    # DateTime.MinValue (0001-01-01) stands for "never": no date rather than a very old one.
    return parsed if parsed.year >= NEVER_BEFORE_YEAR else None


def _load(text: str) -> list[dict[str, Any]]:
    # One instance prints as an object, several as an array, none as nothing at all.
    if not text.strip():
        return []
    try:
        data = json.loads(text[:MAX_OUTPUT])
    except ValueError:
        raise WindowsFormatError("PowerShell output is not JSON") from None
    items = data if isinstance(data, list) else [data]
    return [i for i in items if isinstance(i, dict)][:MAX_PRODUCTS]


def parse_security_center(text: str) -> tuple[WscProduct, ...]:
    products = []
    for item in _load(text):
        name, state = item.get("displayName"), item.get("productState")
        if not isinstance(name, str) or isinstance(state, bool) or not isinstance(state, int):
            raise WindowsFormatError("AntiVirusProduct without displayName/productState")
        enabled, up_to_date = decode_product_state(state)
        exe = item.get("pathToSignedProductExe")
        defender = exe == "windowsdefender://" or "defender" in name.lower()
        stamp = item.get("timestamp")
        try:
            when = parsedate_to_datetime(stamp) if isinstance(stamp, str) else None
        except (TypeError, ValueError):
            when = None
        # The report needs a name; a product that registers none still counts.
        name = clip(name) or "Unnamed antivirus product"
        products.append(WscProduct(name, enabled, up_to_date, defender, when))
    return tuple(products)


def parse_defender_status(text: str) -> DefenderStatus | None:
    items = _load(text)
    if not items:
        return None
    d = items[0]
    version, outdated = d.get("AntivirusSignatureVersion"), d.get("DefenderSignaturesOutOfDate")
    return DefenderStatus(
        antivirus_enabled=d.get("AntivirusEnabled") is True,
        realtime=d["RealTimeProtectionEnabled"] if isinstance(
            d.get("RealTimeProtectionEnabled"), bool) else None,
        signature_time=parse_ps_date(d.get("AntivirusSignatureLastUpdated")),
        signature_version=clip(version) if isinstance(version, str) else None,
        up_to_date=not outdated if isinstance(outdated, bool) else None,
    )


def antivirus_states(wsc: tuple[WscProduct, ...],
                     defender: DefenderStatus | None) -> tuple[AntivirusState, ...]:
    """Merge both views: Defender's entry gains its own detail; on Windows Server, which has no
    Security Center, Defender's status alone describes it."""
    states = []
    for p in wsc:
        if p.defender and defender is not None:
            states.append(_defender_state(p.name, defender, p.enabled,
                                          "SecurityCenter2+Get-MpComputerStatus"))
        else:
            states.append(AntivirusState(product=p.name, enabled=p.enabled, realtime=None,
                                         definitions_time=None, definitions_version=None,
                                         source="SecurityCenter2", up_to_date=p.up_to_date))
    if defender is not None and not any(p.defender for p in wsc):
        states.append(_defender_state("Microsoft Defender Antivirus", defender, True,
                                      "Get-MpComputerStatus"))
    return tuple(states[:MAX_PRODUCTS])


def _defender_state(name: str, d: DefenderStatus, wsc_enabled: bool,
                    source: str) -> AntivirusState:
    return AntivirusState(product=name, enabled=wsc_enabled and d.antivirus_enabled,
                          realtime=d.realtime, definitions_time=d.signature_time,
                          definitions_version=d.signature_version, source=source,
                          up_to_date=d.up_to_date)


def run_powershell(command: str) -> str:
    """Run one read-only query; "" when it fails (no Security Center, Defender removed)."""
    if sys.platform != "win32":
        raise OSError("PowerShell queries run only on Windows")
    try:
        # UTF-8 out, or product names outside the OEM code page arrive garbled.
        out = subprocess.run(["powershell.exe", "-NoProfile", "-NonInteractive", "-Command",
                              "[Console]::OutputEncoding = [Text.Encoding]::UTF8; " + command],
                             capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout[:MAX_OUTPUT].decode("utf-8", "replace") if out.returncode == 0 else ""


def collect_windows() -> tuple[AntivirusState, ...]:
    try:
        wsc = parse_security_center(run_powershell(SECURITY_CENTER))
    except WindowsFormatError:
        wsc = ()
    try:
        defender = parse_defender_status(run_powershell(DEFENDER))
    except WindowsFormatError:
        defender = None
    return antivirus_states(wsc, defender)
