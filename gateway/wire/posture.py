"""The home PC's posture report (antivirus state), its policy thresholds and their assessment.

Attacker-controlled here: the whole report (the home PC is untrusted): from_json() accepts at most
16 KiB of JSON, known keys only, <= 16 products, printable strings <= 200 chars, aware datetimes.

Shared by agent and gateway (standard library only): the agent builds and signs the report and runs
the same assessment offline (`staffroom agent check`) that the gateway decides logins with, so the
teacher sees the gateway's verdict, in the same words, before connecting. The report is signed
inside the login transcript as canonical_bytes() (sorted keys, no whitespace).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from gateway.wire.login import canonical_json

OS_NAMES = {"linux": "Linux", "windows": "Windows", "macos": "macOS"}
MAX_PRODUCTS = 16
MAX_TEXT = 200
MAX_REPORT_BYTES = 16 * 1024
_MAX_TIME_TEXT = 40  # "2026-11-25T09:15:00.1234567+09:00" and a margin

_REPORT_KEYS = frozenset({"os", "os_version", "hostname", "antivirus", "collected_at"})
_AV_KEYS = frozenset({"product", "enabled", "realtime", "definitions_time", "definitions_version",
                      "source", "up_to_date", "updater_running", "state"})
# What the OS says the product is doing, where it says more than on/off (Windows Security
# Center). Only "on" (or no state at all) lets `enabled` count: an expired, snoozed or unreadable
# product never passes, whatever its enabled flag says.
AV_STATES = ("on", "off", "snoozed", "expired", "unknown")


class PostureFormatError(ValueError):
    """The posture report is malformed; the message names the field (safe to send back)."""


@dataclass(frozen=True, slots=True)
class AntivirusState:
    """One antivirus product as the home PC's OS reports it.

    realtime: on-access/real-time scanning on (None: the OS does not say). definitions_time: when
    the definitions were built or installed (None: unknown). up_to_date: the product's own verdict
    on its definitions where that is all the OS gives (Windows Security Center). updater_running:
    the definitions updater daemon is running (freshclam); None where updates are the OS's job.
    state: one of AV_STATES where the OS names it (None: only `enabled` is known).
    """

    product: str
    enabled: bool
    realtime: bool | None
    definitions_time: datetime | None
    definitions_version: str | None
    source: str
    up_to_date: bool | None = None
    updater_running: bool | None = None
    state: str | None = None

    @property
    def running(self) -> bool:
        """Counts as a working antivirus: enabled, and its state (if named) is "on"."""
        return self.enabled and self.state in (None, "on")

    def to_json(self) -> dict[str, Any]:
        out = {"product": self.product, "enabled": self.enabled, "realtime": self.realtime,
               "definitions_time": _time_text(self.definitions_time),
               "definitions_version": self.definitions_version, "source": self.source,
               "up_to_date": self.up_to_date, "updater_running": self.updater_running}
        # Written only when named, so reports without it keep their canonical bytes.
        return out | {"state": self.state} if self.state is not None else out

    @classmethod
    def from_json(cls, data: Any) -> AntivirusState:
        d = _object(data, "antivirus[]", _AV_KEYS)
        return cls(
            product=_text(d, "product", required=True),
            enabled=_bool(d, "enabled", required=True),
            realtime=_bool(d, "realtime"),
            definitions_time=_time(d, "definitions_time"),
            definitions_version=_text(d, "definitions_version") or None,
            source=_text(d, "source"),
            up_to_date=_bool(d, "up_to_date"),
            updater_running=_bool(d, "updater_running"),
            state=_state(d),
        )


@dataclass(frozen=True, slots=True)
class PostureReport:
    os: str  # "linux" | "windows" | "macos"
    os_version: str
    hostname: str
    antivirus: tuple[AntivirusState, ...]
    collected_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"os": self.os, "os_version": self.os_version, "hostname": self.hostname,
                "antivirus": [a.to_json() for a in self.antivirus],
                "collected_at": _time_text(self.collected_at)}

    def canonical_bytes(self) -> bytes:
        """What the login transcript hashes: sorted keys, no whitespace, UTF-8."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> PostureReport:
        """Parse strictly: a JSON object (or its text), known keys only, every bound checked."""
        if isinstance(data, str | bytes):
            if len(data) > MAX_REPORT_BYTES:
                raise PostureFormatError(f"report longer than {MAX_REPORT_BYTES} bytes")
            try:
                data = json.loads(data)
            except (ValueError, RecursionError):
                raise PostureFormatError("report is not valid JSON") from None
        d = _object(data, "report", _REPORT_KEYS)
        os_name = _text(d, "os", required=True)
        if os_name not in OS_NAMES:
            raise PostureFormatError(f"os must be one of {', '.join(OS_NAMES)}")
        products = d.get("antivirus", [])
        if not isinstance(products, list):
            raise PostureFormatError("antivirus must be a list")
        if len(products) > MAX_PRODUCTS:
            raise PostureFormatError(f"antivirus lists more than {MAX_PRODUCTS} products")
        collected_at = _time(d, "collected_at")
        if collected_at is None:
            raise PostureFormatError("collected_at is required")
        return cls(os=os_name, os_version=_text(d, "os_version"), hostname=_text(d, "hostname"),
                   antivirus=tuple(AntivirusState.from_json(p) for p in products),
                   collected_at=collected_at)


@dataclass(frozen=True, slots=True)
class PosturePolicy:
    """The [posture] table of a policy; the gateway decides with it, the agent checks with it."""

    antivirus_required: bool = True
    max_definitions_age_days: int = 3
    realtime_required: bool = False
    allowed_os: tuple[str, ...] = ("linux", "windows", "macos")
    # During a session: the agent reports again about this often (and when the antivirus state
    # changes); a failing or missing report warns, and with on_fail = "end" ends the session
    # after fail_grace.
    recheck_every: timedelta = timedelta(minutes=15)
    on_fail: str = "end"
    fail_grace: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if isinstance(self.max_definitions_age_days, bool) or not isinstance(
                self.max_definitions_age_days, int) or self.max_definitions_age_days < 0:
            raise ValueError("max_definitions_age_days must be a whole number of days >= 0")
        if self.on_fail not in ("warn", "end"):
            raise ValueError("on_fail must be 'warn' or 'end'")
        unknown = [o for o in self.allowed_os if o not in OS_NAMES]
        if unknown:
            raise ValueError(f"allowed_os: unknown operating system {unknown[0]!r}")


class PostureCode(StrEnum):
    """Stable denial codes: audited, sent in Denied, matched by tests and the console."""

    OK = "ok"
    OS_NOT_ALLOWED = "os-not-allowed"
    ANTIVIRUS_MISSING = "antivirus-missing"
    ANTIVIRUS_DISABLED = "antivirus-disabled"
    ANTIVIRUS_UNKNOWN = "antivirus-unknown"  # the PC could not read its antivirus status
    REALTIME_OFF = "realtime-off"
    DEFINITIONS_STALE = "definitions-stale"
    DEFINITIONS_UNKNOWN = "definitions-unknown"
    CLOCK_SKEW = "clock-skew"  # definitions dated further in the future than FUTURE_TOLERANCE


@dataclass(frozen=True, slots=True)
class PostureFinding:
    """One assessed aspect: check is "os", "antivirus", "realtime" or "definitions"; fix is one
    sentence for the teacher (empty when ok); detail says what was found."""

    check: str
    ok: bool
    code: PostureCode
    detail: str
    fix: str = ""


def clip(text: str) -> str:
    """Make collector output fit the format: printable characters only, at most MAX_TEXT."""
    return "".join(c if c.isprintable() else " " for c in text).strip()[:MAX_TEXT]


def _time_text(value: datetime | None) -> str | None:
    # UTC, whole seconds: one spelling per instant, so re-encoding is byte-stable.
    if value is None:
        return None
    # isoformat, not strftime: "%Y" does not zero-pad years before 1000 on glibc.
    return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _object(data: Any, what: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise PostureFormatError(f"{what} must be an object")
    unknown = sorted(str(k)[:40] for k in data if k not in keys)
    if unknown:
        raise PostureFormatError(f"{what} has unknown field {unknown[0]!r}")
    return data


def _text(d: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = d.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise PostureFormatError(f"{key} must be a non-empty string" if required
                                 else f"{key} must be a string")
    if len(value) > MAX_TEXT:
        raise PostureFormatError(f"{key} is longer than {MAX_TEXT} characters")
    if not value.isprintable():
        raise PostureFormatError(f"{key} contains control characters")
    return value


def _state(d: Mapping[str, Any]) -> str | None:
    value = d.get("state")
    if value is None:
        return None
    if value not in AV_STATES:
        raise PostureFormatError(f"state must be one of {', '.join(AV_STATES)}")
    return str(value)


def _bool(d: Mapping[str, Any], key: str, *, required: bool = False) -> Any:
    value = d.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, bool):
        raise PostureFormatError(f"{key} must be true or false")
    return value


def _time(d: Mapping[str, Any], key: str) -> datetime | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TIME_TEXT:
        raise PostureFormatError(f"{key} must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PostureFormatError(f"{key} must be an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise PostureFormatError(f"{key} must carry a time zone")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise PostureFormatError(f"{key} is out of range") from None


# Definitions up to this far ahead of the gateway's clock count as new (time zones, a slightly
# fast PC clock). Further ahead is a wrong clock or a forged report, never "zero days old".
FUTURE_TOLERANCE = timedelta(hours=24)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UPDATE = {
    "linux": "run freshclam (sudo freshclam)",
    "windows": "run Windows Update (or Update-MpSignature in PowerShell)",
    "macos": "install the latest updates in System Settings > General > Software Update",
}
_MISSING = {
    "linux": "No antivirus was found: install ClamAV (apt install clamav-freshclam) and start "
             "freshclam.",
    "windows": "No antivirus was found: turn on Microsoft Defender Antivirus in Windows Security.",
    "macos": "XProtect was not found: install the latest macOS updates in Software Update.",
}
_DISABLED = {
    "linux": "{product} has no virus definitions yet: run freshclam (sudo freshclam) and try "
             "again.",
    "windows": "{product} is turned off: turn it on in Windows Security and try again.",
    "macos": "{product} is turned off: install the latest macOS updates, restart the Mac and "
             "try again.",
}
_STATE_FIX = {
    "snoozed": "{product} is snoozed (paused): turn it back on in Windows Security and try again.",
    "expired": "{product} has expired (its licence or subscription ran out): renew it, or "
               "uninstall it so that Microsoft Defender turns itself on, and try again.",
}
_UNKNOWN = ("This computer could not tell Staffroom whether {product} is running: restart the "
            "computer and run `staffroom-agent check`; if it still says so, ask your IT lead.")
_REALTIME = {
    "linux": "Real-time scanning is off: start clamd and clamonacc (sudo systemctl start "
             "clamav-daemon clamav-clamonacc) and try again.",
    "windows": "Real-time protection is off: turn it on in Windows Security > Virus & threat "
               "protection and try again.",
    "macos": "Real-time protection is off: install the latest macOS updates, restart the Mac and "
             "try again.",
}


def assess_posture(report: PostureReport, policy: PosturePolicy,
                   now: datetime) -> tuple[PostureFinding, ...]:
    """Every aspect the policy asks about, in the order a teacher should fix them (pure).
    The login is allowed iff every finding is ok; the first failing one is the denial."""
    os_ok = report.os in policy.allowed_os
    name = OS_NAMES[report.os]
    detail = report.os_version if name in report.os_version else f"{name} {report.os_version}"
    findings = [PostureFinding("os", os_ok, PostureCode.OK if os_ok else PostureCode.OS_NOT_ALLOWED,
                               detail.strip(), "" if os_ok else _os_fix(report.os, policy))]
    if not policy.antivirus_required:
        findings.append(PostureFinding("antivirus", True, PostureCode.OK,
                                       "not required by policy"))
        return tuple(findings)
    products = report.antivirus
    if not products:
        return (*findings, PostureFinding("antivirus", False, PostureCode.ANTIVIRUS_MISSING,
                                          "none found", _MISSING[report.os]))
    enabled = [p for p in products if p.running]
    if not enabled:
        return (*findings, _not_running(products, report.os))
    findings.append(PostureFinding("antivirus", True, PostureCode.OK,
                                   "; ".join(_describe(p) for p in enabled)))
    live = [p for p in enabled if p.realtime]
    if policy.realtime_required and not live:
        return (*findings, PostureFinding("realtime", False, PostureCode.REALTIME_OFF, "off",
                                          _REALTIME[report.os]))
    findings.append(PostureFinding("realtime", True, PostureCode.OK, _realtime_detail(
        enabled, policy.realtime_required)))
    candidates = live if policy.realtime_required else enabled
    judged = [(_judge_definitions(p, report.os, policy, now), p) for p in candidates]
    findings.append(min(judged, key=_rank)[0])
    return tuple(findings)


def _not_running(products: tuple[AntivirusState, ...], os_name: str) -> PostureFinding:
    """No product runs: name each one's state; the sentence fits the first known state."""
    detail = ", ".join(f"{p.product}: {p.state or 'off'}" for p in products)
    known = [p for p in products if p.state != "unknown"]
    if not known:
        return PostureFinding("antivirus", False, PostureCode.ANTIVIRUS_UNKNOWN, detail,
                              _UNKNOWN.format(product=products[0].product))
    p = known[0]
    fix = _STATE_FIX.get(p.state or "off", _DISABLED[os_name])
    return PostureFinding("antivirus", False, PostureCode.ANTIVIRUS_DISABLED, detail,
                          fix.format(product=p.product))


def _os_fix(os_name: str, policy: PosturePolicy) -> str:
    allowed = [OS_NAMES[o] for o in OS_NAMES if o in policy.allowed_os]
    if not allowed:
        return "No computer may connect under the current policy: ask your IT lead."
    return (f"{OS_NAMES[os_name]} computers may not be used to connect: use a "
            f"{' or '.join(allowed)} computer.")


def _describe(p: AntivirusState) -> str:
    if p.updater_running is False:
        return f"{p.product} (its updater is not running, so definitions will go stale)"
    return p.product


def _realtime_detail(enabled: list[AntivirusState], required: bool) -> str:
    states = {p.realtime for p in enabled}
    text = "on" if True in states else ("off" if False in states else "not reported")
    return text if required or text == "on" else f"{text} (not required by policy)"


def _judge_definitions(p: AntivirusState, os_name: str, policy: PosturePolicy,
                       now: datetime) -> PostureFinding:
    update = _UPDATE[os_name]
    version = f", version {p.definitions_version}" if p.definitions_version else ""
    t = p.definitions_time
    if t is None:
        if p.up_to_date is True:
            return PostureFinding("definitions", True, PostureCode.OK,
                                  f"{p.product}: up to date (as the product reports){version}")
        if p.up_to_date is False:
            return PostureFinding("definitions", False, PostureCode.DEFINITIONS_STALE,
                                  f"{p.product}: out of date{version}",
                                  f"{p.product} says its definitions are out of date: {update} "
                                  "and try again.")
        return PostureFinding("definitions", False, PostureCode.DEFINITIONS_UNKNOWN,
                              f"{p.product}: age unknown{version}",
                              f"{p.product} does not say how old its definitions are: {update} "
                              "and try again.")
    when = _date(t)
    if t - now > FUTURE_TOLERANCE:
        return PostureFinding("definitions", False, PostureCode.CLOCK_SKEW,
                              f"{p.product}: dated {when}, in the future{version}",
                              f"Your antivirus definitions are dated {when}, in the future: check "
                              "this computer's date and time and try again.")
    age = max(now - t, timedelta(0))
    limit = policy.max_definitions_age_days
    detail = f"{p.product}: from {when} ({_age(age)} old{version})"
    if age <= timedelta(days=limit):
        return PostureFinding("definitions", True, PostureCode.OK, detail)
    words = _days(age.days) if age.days > limit else f"more than {_days(limit)}"
    return PostureFinding("definitions", False, PostureCode.DEFINITIONS_STALE, detail,
                          f"Your antivirus definitions are {words} old: {update} and try again.")


_RANK = (PostureCode.OK, PostureCode.DEFINITIONS_STALE, PostureCode.CLOCK_SKEW,
         PostureCode.DEFINITIONS_UNKNOWN)


def _rank(judged: tuple[PostureFinding, AntivirusState]) -> tuple[int, float]:
    # A passing product wins; among failures the most actionable sentence, then the newest.
    finding, product = judged
    newest = -product.definitions_time.timestamp() if product.definitions_time else 0.0
    return _RANK.index(finding.code), newest


def _date(t: datetime) -> str:
    t = t.astimezone(UTC)
    return f"{t.day} {_MONTHS[t.month - 1]} {t.year}"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _age(age: timedelta) -> str:
    return "less than a day" if age.days == 0 else _days(age.days)
