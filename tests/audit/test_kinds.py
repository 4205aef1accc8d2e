"""Typed audit events: each kind stores exactly what the string form stored, passes the log's
checks, reads back equal, and is explained to officers in docs/OFFICERS.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.audit.events import AuditEvent, check_event
from gateway.audit.kinds import (
    ALL,
    GatewayStopped,
    RecordingDeleted,
    SessionRefused,
    SessionStarted,
    Who,
    to_event,
)
from gateway.audit.query import tail

OFFICERS = Path(__file__).resolve().parents[2] / "docs" / "OFFICERS.md"


def test_a_typed_event_is_the_record_the_string_form_made() -> None:
    who = Who(actor="t.sato", subject="t.sato", school="kita-es", session="ab", source="10.0.0.9")
    assert to_event(SessionRefused("cert-revoked"), who) == AuditEvent(
        "session.start", "denied", actor="t.sato", subject="t.sato", school="kita-es",
        session="ab", source="10.0.0.9", details={"code": "cert-revoked", "stage": "attach"})
    # None fields are left out, as the string call sites did.
    assert to_event(RecordingDeleted("r1")).details == {"recording": "r1"}
    assert to_event(GatewayStopped()) == AuditEvent("gateway.stop", "ok", details={})


@pytest.mark.parametrize("kind", ALL, ids=lambda k: k.__name__)
def test_every_kind_is_accepted_by_the_log_and_documented(kind: type) -> None:
    values = {"desktop": ":12", "error": "gone", "code": "disabled", "remote": "10.0.0.9",
              "recording": "r1", "listen": "127.0.0.1:8443", "after": "disk full"}
    names = [n for n in kind.__dataclass_fields__ if n in values]  # type: ignore[attr-defined]
    event = to_event(kind(**{n: values[n] for n in names}), Who(actor="a"))
    assert check_event(event) == check_event(event)  # no ValueError: a valid, storable event
    assert f"`{kind.KIND}`" in OFFICERS.read_text(), f"{kind.KIND} missing from OFFICERS.md"


def test_typed_events_read_back_equal(audit_log) -> None:  # type: ignore[no-untyped-def]
    event = to_event(SessionStarted(":12"), Who(actor="t.sato", session="ab"))
    audit_log.append(event)
    assert tail(audit_log.directory, 1)[0].event == check_event(event)
