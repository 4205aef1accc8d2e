"""Typed audit events: one frozen dataclass per kind and outcome, its fields the record's details.

STYLE.md §5/§9 (Teleport's typed events): a call site says `SessionRefused(code=…)` instead of
`"session.start", "denied", {"code": …}`, so a misspelt kind or detail is a type error, not a
silently different record. The stored form does not change — `to_event` gives the same
AuditEvent (details: the fields that are not None) — so old logs, `verify`, queries and exports
are untouched. Call sites move here file by file (today: the session broker, the gateway's
lifecycle, retention and health); the string form stays accepted meanwhile.

Attacker-controlled here: field values may carry peer text (an error from a desktop); they pass
through `check_event` like any other event (bounded, cleaned).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Protocol

from gateway.audit.events import AuditEvent


class TypedEvent(Protocol):
    KIND: ClassVar[str]
    OUTCOME: ClassVar[str]


@dataclass(frozen=True, slots=True)
class Who:
    """The record's context columns: who acted, on whom, where, in which session, from where."""

    actor: str | None = None
    subject: str | None = None
    school: str | None = None
    session: str | None = None
    source: str | None = None


def to_event(typed: TypedEvent, who: Who = Who()) -> AuditEvent:
    details = {f.name: v for f in fields(typed)  # type: ignore[arg-type]
               if (v := getattr(typed, f.name)) is not None}
    return AuditEvent(kind=typed.KIND, outcome=typed.OUTCOME, actor=who.actor,
                      subject=who.subject, school=who.school, session=who.session,
                      source=who.source, details=details)


# --- sessions (gateway/live/broker.py) ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SessionStarted:
    KIND: ClassVar[str] = "session.start"
    OUTCOME: ClassVar[str] = "ok"
    desktop: str  # display (":12") or host:port of the desktop attached


@dataclass(frozen=True, slots=True)
class SessionStartFailed:
    KIND: ClassVar[str] = "session.start"
    OUTCOME: ClassVar[str] = "error"
    error: str  # why the desktop could not be attached


@dataclass(frozen=True, slots=True)
class SessionRefused:
    """The login passed, but the key was revoked or the account disabled before it attached."""

    KIND: ClassVar[str] = "session.start"
    OUTCOME: ClassVar[str] = "denied"
    code: str  # "cert-revoked", "disabled", "cert-unknown", "ended"
    stage: str = "attach"


@dataclass(frozen=True, slots=True)
class SessionResumed:
    KIND: ClassVar[str] = "session.resume"
    OUTCOME: ClassVar[str] = "ok"
    remote: str | None


@dataclass(frozen=True, slots=True)
class RecordingStopped:
    KIND: ClassVar[str] = "recording.failed"
    OUTCOME: ClassVar[str] = "error"
    error: str  # one sentence (disk full, or could not be saved)


# --- recordings and the gateway (gateway/app.py, gateway/health.py) -------------------------

@dataclass(frozen=True, slots=True)
class RecordingDeleted:
    KIND: ClassVar[str] = "recording.delete"
    OUTCOME: ClassVar[str] = "ok"
    recording: str
    reason: str | None = None  # "retention" when retention deleted it
    retention_days: int | None = None


@dataclass(frozen=True, slots=True)
class GatewayStarted:
    KIND: ClassVar[str] = "gateway.start"
    OUTCOME: ClassVar[str] = "ok"
    listen: str


@dataclass(frozen=True, slots=True)
class GatewayStopped:
    KIND: ClassVar[str] = "gateway.stop"
    OUTCOME: ClassVar[str] = "ok"


@dataclass(frozen=True, slots=True)
class WritesResumed:
    """The audit log could be written again after a failure (a full disk)."""

    KIND: ClassVar[str] = "gateway.resumed"
    OUTCOME: ClassVar[str] = "ok"
    after: str  # the sentence health showed while it failed


ALL: tuple[type[TypedEvent], ...] = (
    SessionStarted, SessionStartFailed, SessionRefused, SessionResumed, RecordingStopped,
    RecordingDeleted, GatewayStarted, GatewayStopped, WritesResumed,
)
