"""Typed audit events: one frozen dataclass per kind and outcome, its fields the record's details.

STYLE.md §5/§9 (Teleport's typed events): a call site says `SessionRefused(code=…)` instead of
`"session.start", "denied", {"code": …}`, so a misspelt kind or detail is a type error, not a
silently different record. The stored form does not change — `to_event` gives the same
AuditEvent the string call sites made — so old logs, `verify`, queries, exports and the
work-hours report are untouched. Outside gateway/audit nothing builds an AuditEvent or names a
kind as a string (tests/audit/test_kinds.py scans for it).

Stored details: every field without a default (even when None: the string form stored
`"remote": null`), and the defaulted fields that are not None. A field marked `HEADER` is not a
detail: it decides a data-driven kind or outcome (`RedirectionBlocked.channel`,
`PostureChecked.outcome`).

The kinds live by area: sessions (the live path, help, redirection, posture), accounts
(operators, users, logins, keys), recordings (recordings, replay requests, reports, exports,
workspaces) and gateway (lifecycle, TLS, metrics).

Attacker-controlled here: field values may carry peer text (an error from a desktop, a header);
they pass through `check_event` like any other event (bounded, cleaned).
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass, fields
from types import ModuleType
from typing import Any, ClassVar, Protocol

from gateway.audit.events import AuditEvent

HEADER: dict[str, Any] = {"header": True}  # field(metadata=HEADER): not a detail


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


def details_of(typed: TypedEvent) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for f in fields(typed):  # type: ignore[arg-type]
        if f.metadata.get("header"):
            continue
        value = getattr(typed, f.name)
        required = f.default is MISSING and f.default_factory is MISSING
        if value is not None or required:
            found[f.name] = value
    return found


def to_event(typed: TypedEvent, who: Who = Who()) -> AuditEvent:
    return AuditEvent(kind=typed.KIND, outcome=typed.OUTCOME, actor=who.actor,
                      subject=who.subject, school=who.school, session=who.session,
                      source=who.source, details=details_of(typed))


from gateway.audit.kinds import accounts, continuity, gateway, recordings, sessions  # noqa: E402
from gateway.audit.kinds.accounts import *  # noqa: E402, F403
from gateway.audit.kinds.continuity import *  # noqa: E402, F403
from gateway.audit.kinds.gateway import *  # noqa: E402, F403
from gateway.audit.kinds.recordings import *  # noqa: E402, F403
from gateway.audit.kinds.sessions import *  # noqa: E402, F403


def _kinds(module: ModuleType) -> list[type[TypedEvent]]:
    return [v for v in vars(module).values() if isinstance(v, type)
            and dataclasses.is_dataclass(v) and v.__module__ == module.__name__
            and hasattr(v, "OUTCOME")]


ALL: tuple[type[TypedEvent], ...] = tuple(
    k for m in (sessions, accounts, recordings, gateway, continuity) for k in _kinds(m))
