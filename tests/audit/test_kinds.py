"""Typed audit events: each kind stores exactly what the string form stored, passes the log's
checks, reads back equal, and is explained to officers in docs/OFFICERS.md; and nothing outside
gateway/audit writes a record from a string kind any more."""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from gateway.audit import kinds
from gateway.audit.events import AuditEvent, check_event
from gateway.audit.kinds import (
    ALL,
    AccountLocked,
    AuditExported,
    GatewayStopped,
    HelpEnded,
    OperatorLoggedIn,
    PostureChecked,
    RecordingDeleted,
    RedirectionBlocked,
    ReplayApproved,
    SessionEnded,
    SessionLoginDenied,
    SessionRefused,
    SessionResumed,
    SessionStarted,
    Who,
    WorkspaceAssigned,
    to_event,
)
from gateway.audit.query import tail

ROOT = Path(__file__).resolve().parents[2]
OFFICERS = ROOT / "docs" / "OFFICERS.md"
WORK = {"started_at": "2027-04-01T08:00:00+00:00", "ended_at": "2027-04-01T09:00:00+00:00",
        "duration_seconds": 3600, "active_minutes": 50, "idle_minutes": 10}

# (typed, the kind, outcome and details the string call site wrote before it was converted)
SAMPLES: list[tuple[Any, str, str, dict[str, Any]]] = [
    (SessionRefused("cert-revoked"), "session.start", "denied",
     {"code": "cert-revoked", "stage": "attach"}),
    (SessionResumed(None), "session.resume", "ok", {"remote": None}),
    (SessionLoginDenied(code="cert-revoked", serial="1f", resume=False, reason="keyCompromise"),
     "session.login", "denied",
     {"code": "cert-revoked", "serial": "1f", "resume": False, "reason": "keyCompromise"}),
    (SessionEnded(code="normal", reason="bye", bytes=10, frames=2, **WORK), "session.end", "ok",
     {"code": "normal", "reason": "bye", "bytes": 10, "frames": 2, **WORK}),
    (RedirectionBlocked("clipboard", direction="to-local", bytes=9, attempt=20,
                        last_recorded=True), "redirection.clipboard", "blocked",
     {"direction": "to-local", "bytes": 9, "attempt": 20, "last_recorded": True}),
    (RedirectionBlocked("viewer_paste", repeats=3, attempt=1), "redirection.viewer_paste",
     "blocked", {"repeats": 3, "attempt": 1, "last_recorded": False}),
    (PostureChecked("missing", code="no-report", last_seq=4, seconds=1000), "posture.recheck",
     "missing", {"code": "no-report", "last_seq": 4, "seconds": 1000}),
    (HelpEnded(helper=None, action="end"), "help.end", "ok", {"helper": None, "action": "end"}),
    (OperatorLoggedIn(expires_at="2027-04-01T09:00:00+00:00", via="console"), "operator.login",
     "ok", {"via": "console", "expires_at": "2027-04-01T09:00:00+00:00"}),
    (AccountLocked(via="tunnel", scope="account-address", seconds=900), "account.locked", "ok",
     {"via": "tunnel", "scope": "account-address", "seconds": 900}),
    (ReplayApproved(recording="r1", request="q1", requester="o.ito", purpose="replay", note="",
                    expires=None), "recording.approve", "ok",
     {"recording": "r1", "request": "q1", "requester": "o.ito", "purpose": "replay", "note": "",
      "expires": None}),
    (WorkspaceAssigned(provider="xvnc", address=None), "workspace.assign", "ok",
     {"provider": "xvnc", "address": None}),
    (AuditExported(format="csv", **{"kind": "session"}), "export.audit", "ok",
     {"format": "csv", "kind": "session"}),
    (RecordingDeleted("r1"), "recording.delete", "ok", {"recording": "r1"}),
    (GatewayStopped(), "gateway.stop", "ok", {}),
]


@pytest.mark.parametrize(("typed", "kind", "outcome", "details"), SAMPLES,
                         ids=[type(s[0]).__name__ + "-" + s[2] for s in SAMPLES])
def test_a_typed_event_is_the_record_the_string_form_made(typed: Any, kind: str, outcome: str,
                                                         details: dict[str, Any]) -> None:
    who = Who(actor="t.sato", subject="t.sato", school="kita-es", session="ab", source="10.0.0.9")
    assert to_event(typed, who) == AuditEvent(
        kind, outcome, actor="t.sato", subject="t.sato", school="kita-es", session="ab",
        source="10.0.0.9", details=details)


def _sample(name: str, hint: Any) -> Any:
    """A value of a field's type, for building every kind generically."""
    if name == "channel":
        return "clipboard"
    if name == "outcome":
        return "failed"
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) and args:
        hint = args[0]
    if typing.get_origin(hint) is list:
        return ["a"]
    return {str: "x", int: 1, bool: True}[hint]


def _build(kind: type) -> Any:
    hints = typing.get_type_hints(kind)
    return kind(**{f.name: _sample(f.name, hints[f.name]) for f in dataclasses.fields(kind)})


@pytest.mark.parametrize("kind", ALL, ids=lambda k: k.__name__)
def test_every_kind_is_accepted_by_the_log_and_documented(kind: type) -> None:
    event = to_event(_build(kind), Who(actor="a"))
    assert check_event(event) == check_event(event)  # no ValueError: a valid, storable event
    assert event.kind.count(".") == 1 and event.outcome
    assert set(event.details) == {f.name for f in dataclasses.fields(kind)} - {"channel",
                                                                             "outcome"}
    assert f"`{event.kind}`" in OFFICERS.read_text(), f"{event.kind} missing from OFFICERS.md"


def test_no_two_kinds_claim_the_same_record() -> None:
    claimed = [(k.KIND, k.OUTCOME) for k in ALL if isinstance(k.__dict__.get("KIND"), str)
               and isinstance(k.__dict__.get("OUTCOME"), str)]
    assert len(claimed) > 50
    assert not {c for c in claimed if claimed.count(c) > 1}


def test_typed_events_read_back_equal(audit_log) -> None:  # type: ignore[no-untyped-def]
    event = to_event(SessionStarted(":12"), Who(actor="t.sato", session="ab"))
    audit_log.append(event)
    assert tail(audit_log.directory, 1)[0].event == check_event(event)


# --- nothing outside gateway/audit writes a string kind -------------------------------------

AUDIT_CALLS = {"audit", "_audit", "aappend"}


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if ROOT in path.parents else path.name


def string_kinds(path: Path) -> list[str]:
    """Calls that build an AuditEvent, or pass a kind as a string (literal or f-string) to an
    audit helper (`audit(request, "…")`, `self.audit("…")`, `_audit(c, "…")`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else \
            node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if name == "AuditEvent":
            found.append(f"{_shown(path)}:{node.lineno} builds an AuditEvent")
        elif name in AUDIT_CALLS and any(
                isinstance(a, ast.JoinedStr) or (isinstance(a, ast.Constant)
                                                 and isinstance(a.value, str))
                for a in node.args):
            found.append(f"{_shown(path)}:{node.lineno} passes a string kind")
    return found


def test_no_module_outside_gateway_audit_writes_a_string_kind() -> None:
    audit_dir = ROOT / "gateway" / "audit"
    found = [hit for p in sorted((ROOT / "gateway").rglob("*.py"))
             if audit_dir not in p.parents for hit in string_kinds(p)]
    assert not found, "use a typed event from gateway.audit.kinds:\n" + "\n".join(found)


def test_the_scan_finds_the_old_forms(tmp_path: Path) -> None:
    """The scan above would catch each way a string kind was written before."""
    old = tmp_path / "old_forms.py"
    source = ('async def f(request, c, self):\n'
              '    await audit(request, "user.add", "ok")\n'
              '    await self.audit(f"redirection.{k}", "blocked", {})\n'
              '    await _audit(c, "session.login", "ok", user=None)\n'
              '    c.audit.append(AuditEvent(kind="tls.reload", outcome="ok"))\n')
    old.write_text(source)
    assert len(string_kinds(old)) == 4


def test_kinds_package_exports_every_kind() -> None:
    assert {k.__name__ for k in ALL} <= set(vars(kinds))
    assert len(ALL) >= 60
