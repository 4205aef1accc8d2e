"""Audit events and stored records, and their one canonical JSON form (what the hash chain covers).

Attacker-controlled here: event strings (checked by gateway.audit.rules) and, when a log is read
back, every byte of a line. Limits: a stored line is at most 64 KiB; parse_record accepts exactly
the record fields with their types and raises RecordFormatError for anything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from types import MappingProxyType
from typing import Any

from gateway.audit import rules

MAX_LINE = 64 * 1024  # bytes of one stored record, newline included

KIND_CREATED = "audit.created"  # record 0: carries the random log id the chain starts from
KIND_CHECKPOINT = "audit.checkpoint"  # signed (log id, seq, previous hash)
KIND_RECOVERED = "audit.recovered"  # reopened with one record past the head (a crash)


class Outcome(StrEnum):
    """The usual outcomes; any short lower-case word is accepted so new ones need no change here."""

    OK = "ok"
    DENIED = "denied"
    ERROR = "error"
    BLOCKED = "blocked"


class RecordFormatError(ValueError):
    """A stored line is not a well-formed audit record (the message says which field)."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened; the log adds sequence number, time and hashes."""

    kind: str  # dotted lower case: "login", "session.start", "admin.user.create"
    outcome: str  # Outcome or another short lower-case word
    actor: str | None = None  # who did it (user id, operator id)
    subject: str | None = None  # whom or what it was done to
    school: str | None = None
    session: str | None = None
    source: str | None = None  # remote address
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored line: the event, its place in the chain and the chain hashes."""

    seq: int
    time: str  # UTC ISO 8601 with microseconds, "2025-04-01T08:30:00.000000Z"
    event: AuditEvent
    prev_hash: str  # lower-case hex SHA-256
    hash: str

    kind = property(lambda self: self.event.kind)
    outcome = property(lambda self: self.event.outcome)
    actor = property(lambda self: self.event.actor)
    subject = property(lambda self: self.event.subject)
    school = property(lambda self: self.event.school)
    session = property(lambda self: self.event.session)
    source = property(lambda self: self.event.source)
    details = property(lambda self: self.event.details)

    @property
    def when(self) -> datetime:
        """`time` as an aware datetime (UTC)."""
        return parse_time(self.time)


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no floats: the same record always gives the same bytes."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
    ).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot store {type(value).__name__} in an audit record")


def check_event(event: AuditEvent, *, internal: bool = False) -> AuditEvent:
    """The event as it will be stored, or ValueError (secret-looking key, bad kind, bad type).

    Strings are cut to MAX_STRING and unencodable characters replaced: a denied login with a
    strange user name must still be recorded, not make the audit (and so the decision) fail.
    """
    return AuditEvent(
        kind=rules.check_kind(event.kind, internal=internal),
        outcome=rules.check_outcome(event.outcome),
        actor=rules.clean_optional("actor", event.actor),
        subject=rules.clean_optional("subject", event.subject),
        school=rules.clean_optional("school", event.school),
        session=rules.clean_optional("session", event.session),
        source=rules.clean_optional("source", event.source),
        details=rules.clean_details(event.details, internal=internal),
    )


SHRUNK_STRING = 256


def shrink_event(event: AuditEvent, *, drop_details: bool = False) -> AuditEvent:
    """The event cut down to fit one line, saying so in its details (it is still recorded)."""
    cut = partial(rules.clean_str, limit=SHRUNK_STRING)
    details: dict[str, Any] = {}
    if not drop_details:
        for key, value in event.details.items():
            if isinstance(value, str):
                value = cut(value)
            elif isinstance(value, tuple):
                value = tuple(cut(v) if isinstance(v, str) else v for v in value[:16])
            details[key] = value
    details["audit_shrunk"] = "details dropped" if drop_details else "strings shortened"
    return AuditEvent(
        kind=event.kind,
        outcome=event.outcome,
        actor=event.actor and cut(event.actor),
        subject=event.subject and cut(event.subject),
        school=event.school and cut(event.school),
        session=event.session and cut(event.session),
        source=event.source and cut(event.source),
        details=MappingProxyType(details),
    )


def record_body(seq: int, time: str, event: AuditEvent, prev_hash: str) -> dict[str, Any]:
    """The record as a JSON object without its hash: what the hash is computed over."""
    return {
        "seq": seq,
        "time": time,
        "kind": event.kind,
        "outcome": event.outcome,
        "actor": event.actor,
        "subject": event.subject,
        "school": event.school,
        "session": event.session,
        "source": event.source,
        "details": dict(event.details),
        "prev_hash": prev_hash,
    }


def record_line(record: AuditRecord) -> bytes:
    """The stored line (canonical JSON plus newline) for a record."""
    body = record_body(record.seq, record.time, record.event, record.prev_hash)
    body["hash"] = record.hash
    return canonical_json(body) + b"\n"


# A stored record's fields, in export order (CSV columns); a line must have exactly these.
RECORD_FIELDS = ("seq", "time", "kind", "outcome", "actor", "subject", "school", "session",
                 "source", "details", "prev_hash", "hash")
_FIELDS = frozenset(RECORD_FIELDS)
_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse_record(line: bytes) -> AuditRecord:
    """A stored line back into a record, or RecordFormatError naming what is wrong with it."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise RecordFormatError("it is not valid JSON") from exc
    if not isinstance(data, dict) or set(data) != _FIELDS:
        raise RecordFormatError("it does not have exactly the audit record fields")
    seq = data["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise RecordFormatError("its sequence number is not a whole number")
    for name in ("prev_hash", "hash"):
        if not isinstance(data[name], str) or not _HEX64.fullmatch(data[name]):
            raise RecordFormatError(f"its {name} is not a SHA-256 hex digest")
    try:
        parse_time(data["time"])
        details = data["details"]
        if not isinstance(details, dict):
            raise ValueError("details is not an object")
        details = {k: tuple(v) if isinstance(v, list) else v for k, v in details.items()}
        event = check_event(
            AuditEvent(
                kind=data["kind"],
                outcome=data["outcome"],
                actor=data["actor"],
                subject=data["subject"],
                school=data["school"],
                session=data["session"],
                source=data["source"],
                details=details,
            ),
            internal=True,
        )
    except (TypeError, ValueError) as exc:
        raise RecordFormatError(f"a field is malformed ({exc})") from exc
    return AuditRecord(
        seq=seq, time=data["time"], event=event, prev_hash=data["prev_hash"], hash=data["hash"]
    )
