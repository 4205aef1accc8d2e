"""Windows: antivirus state from Security Center (every registered product) and Defender.

Untrusted input here: PowerShell's JSON output (anything registered with Security Center names
itself); output is capped at 1 MiB, at most 16 products are kept and every string is clipped.

Security Center's productState packs three bytes, 0xPPSSDD (undocumented by Microsoft, stable since
Vista; e.g. 397568 = 0x061100 is Defender on and current). The widely used public decoding, which
IPA's Thin Telework checker also applies:
  PP  which providers the product covers (0x04 antivirus, 0x02 auto-update, ...); ignored here;
  SS  high nibble the state: 0 off, 1 on, 2 snoozed, 3 expired (the four documented IWscProduct
      WSC_SECURITY_PRODUCT_STATE values); any other nibble is "unknown", never "on";
      low nibble the owner: 1 Microsoft, 0 a third party;
  DD  definitions: 0x00 up to date, 0x10 out of date, anything else unknown.
Only state "on" counts as enabled. Security Center has no definitions date, so third-party
products carry only its up-to-date flag; when the product is Microsoft Defender its own status
(Get-MpComputerStatus: real-time protection, signature date or age, out-of-date flag) decides.
A collector that fails (no PowerShell, no SecurityCenter2 namespace as on Windows Server, a
timeout) yields one product in state "unknown", which the policy refuses with what to do.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from gateway.wire.posture import MAX_PRODUCTS, AntivirusState, clip

MAX_OUTPUT = 1024 * 1024
SECURITY_CENTER = ("Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct "
                   "| ConvertTo-Json")
DEFENDER = "Get-MpComputerStatus | ConvertTo-Json"
NEVER_BEFORE_YEAR = 1990
POWERSHELL_TIMEOUT = 30.0
STATES = {0: "off", 1: "on", 2: "snoozed", 3: "expired"}
DEFINITIONS = {0x00: True, 0x10: False}
MAX_SIGNATURE_AGE_DAYS = 100_000  # Get-MpComputerStatus says 65535 for "never updated"
UNREADABLE = "Windows Security Center"
_PS5_DATE = re.compile(r"/Date\((-?\d{1,15})([+-]\d{4})?\)/")


class WindowsFormatError(ValueError):
    """PowerShell printed something that is not the JSON we asked for."""


class CollectorError(OSError):
    """A query could not run or did not answer (the message says why, for the report)."""


@dataclass(frozen=True, slots=True)
class ProductState:
    """productState decoded: state (on/off/snoozed/expired/unknown), owner, definitions."""

    state: str
    microsoft: bool
    up_to_date: bool | None  # None: a definitions byte other than 0x00 or 0x10

    @property
    def enabled(self) -> bool:
        return self.state == "on"


@dataclass(frozen=True, slots=True)
class WscProduct:
    name: str
    enabled: bool
    up_to_date: bool | None
    defender: bool  # Microsoft's own product: Get-MpComputerStatus describes it in detail
    timestamp: datetime | None  # when the product last reported to Security Center
    state: str = "on"


@dataclass(frozen=True, slots=True)
class DefenderStatus:
    antivirus_enabled: bool
    realtime: bool | None
    signature_time: datetime | None
    signature_version: str | None
    up_to_date: bool | None = None  # not DefenderSignaturesOutOfDate
    signature_age_days: int | None = None  # AntivirusSignatureAge


def decode_product_state(value: int) -> ProductState:
    """Security Center's productState by its state nibble (see the module docstring)."""
    if isinstance(value, bool) or not 0 <= value <= 0xFFFFFF:
        raise WindowsFormatError(f"productState {value} out of range")
    scanner = (value >> 8) & 0xFF
    return ProductState(state=STATES.get(scanner >> 4, "unknown"),
                        microsoft=scanner & 0x0F == 1,
                        up_to_date=DEFINITIONS.get(value & 0xFF))


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
        decoded = decode_product_state(state)
        exe = item.get("pathToSignedProductExe")
        # Microsoft's product: its owner nibble, its Security Center URI, or its name.
        defender = decoded.microsoft or exe == "windowsdefender://" or "defender" in name.lower()
        stamp = item.get("timestamp")
        try:
            when = parsedate_to_datetime(stamp) if isinstance(stamp, str) else None
        except (TypeError, ValueError):
            when = None
        # The report needs a name; a product that registers none still counts.
        name = clip(name) or "Unnamed antivirus product"
        products.append(WscProduct(name, decoded.enabled, decoded.up_to_date, defender, when,
                                   decoded.state))
    return tuple(products)


def parse_defender_status(text: str) -> DefenderStatus | None:
    items = _load(text)
    if not items:
        return None
    d = items[0]
    version, outdated = d.get("AntivirusSignatureVersion"), d.get("DefenderSignaturesOutOfDate")
    age = d.get("AntivirusSignatureAge")
    if isinstance(age, bool) or not isinstance(age, int) or not 0 <= age < MAX_SIGNATURE_AGE_DAYS:
        age = None
    return DefenderStatus(
        antivirus_enabled=d.get("AntivirusEnabled") is True,
        realtime=d["RealTimeProtectionEnabled"] if isinstance(
            d.get("RealTimeProtectionEnabled"), bool) else None,
        signature_time=parse_ps_date(d.get("AntivirusSignatureLastUpdated")),
        signature_version=clip(version) if isinstance(version, str) else None,
        up_to_date=not outdated if isinstance(outdated, bool) else None,
        signature_age_days=age,
    )


def antivirus_states(wsc: tuple[WscProduct, ...], defender: DefenderStatus | None,
                     now: datetime | None = None) -> tuple[AntivirusState, ...]:
    """Merge both views: Defender's entry gains its own detail; on Windows Server, which has no
    Security Center, Defender's status alone describes it."""
    states = []
    for p in wsc:
        if p.defender and defender is not None:
            states.append(_defender_state(p.name, defender, p.state,
                                          "SecurityCenter2+Get-MpComputerStatus", now))
        else:
            states.append(AntivirusState(product=p.name, enabled=p.enabled, realtime=None,
                                         definitions_time=None, definitions_version=None,
                                         source="SecurityCenter2", up_to_date=p.up_to_date,
                                         state=p.state))
    if defender is not None and not any(p.defender for p in wsc):
        states.append(_defender_state("Microsoft Defender Antivirus", defender, "on",
                                      "Get-MpComputerStatus", now))
    return tuple(states[:MAX_PRODUCTS])


def _defender_state(name: str, d: DefenderStatus, wsc_state: str, source: str,
                    now: datetime | None) -> AntivirusState:
    # Defender's own word decides: off when it says its antivirus is disabled.
    state = wsc_state if d.antivirus_enabled or wsc_state != "on" else "off"
    when = d.signature_time
    if when is None and d.signature_age_days is not None:
        when = (now or datetime.now(UTC)) - timedelta(days=d.signature_age_days)
    return AntivirusState(product=name, enabled=state == "on", realtime=d.realtime,
                          definitions_time=when, definitions_version=d.signature_version,
                          source=source, up_to_date=d.up_to_date, state=state)


def unreadable(reason: str) -> AntivirusState:
    """What the report says when neither query answered: state "unknown", never "on"."""
    return AntivirusState(product=UNREADABLE, enabled=False, realtime=None,
                          definitions_time=None, definitions_version=None,
                          source=clip(f"unreadable: {reason}"), state="unknown")


def run_powershell(command: str, *, exe: str = "powershell.exe",
                   timeout: float = POWERSHELL_TIMEOUT) -> str:
    """Run one read-only query and return its output; CollectorError when it cannot run, fails
    (no SecurityCenter2 namespace, Defender removed) or does not answer in time."""
    if sys.platform != "win32" and exe == "powershell.exe":
        raise CollectorError("PowerShell queries run only on Windows")
    try:
        # UTF-8 out, or product names outside the OEM code page arrive garbled.
        out = subprocess.run([exe, "-NoProfile", "-NonInteractive", "-Command",
                              "[Console]::OutputEncoding = [Text.Encoding]::UTF8; " + command],
                             capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CollectorError(f"PowerShell did not answer within {timeout:g} s") from None
    except OSError as e:
        raise CollectorError(f"PowerShell could not start ({e.strerror or e})") from None
    if out.returncode != 0:
        first = out.stderr[:400].decode("utf-8", "replace").strip().splitlines()
        raise CollectorError(f"PowerShell failed: {first[0] if first else out.returncode}")
    return out.stdout[:MAX_OUTPUT].decode("utf-8", "replace")


def collect_windows(run: Any = run_powershell) -> tuple[AntivirusState, ...]:
    """Both queries; a failed one is left out, and when both fail the report says "unknown"."""
    failures = []
    wsc: tuple[WscProduct, ...] = ()
    defender = None
    try:
        wsc = parse_security_center(run(SECURITY_CENTER))
    except (CollectorError, WindowsFormatError) as e:
        failures.append(f"Security Center: {e}")
    try:
        defender = parse_defender_status(run(DEFENDER))
    except (CollectorError, WindowsFormatError) as e:
        failures.append(f"Defender: {e}")
    if len(failures) == 2:
        return (unreadable("; ".join(failures)),)
    return antivirus_states(wsc, defender)
