from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import chain
from gateway.audit.events import (
    AuditEvent,
    AuditRecord,
    RecordFormatError,
    canonical_json,
    check_event,
    parse_record,
    record_line,
)
from gateway.audit.rules import MAX_STRING, PEM_REDACTED, is_secret_key


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_password",
        "userPassword",
        "passwd",
        "passphrase",
        "pin",
        "user_pin",
        "so_pin",
        "totp",
        "totp_code",
        "otp",
        "token",
        "bearer_token",
        "api_token",
        "secret",
        "client_secret",
        "key",
        "private_key",
        "privateKey",
        "session_key",
        "key_pem",
        "cookie",
        "csrf",
        "credentials",
        "Authorization",
    ],
)
def test_append_refuses_secret_looking_detail_keys(audit_log, key):
    with pytest.raises(ValueError, match="secret"):
        audit_log.append(AuditEvent("login", "denied", details={key: "x"}))
    assert audit_log.last_seq == 0  # nothing was written


@pytest.mark.parametrize(
    "key",
    [
        "method",
        "token_serial",
        "key_id",
        "key_fingerprint",
        "cert_serial",
        "mapping",
        "shipping",
        "reason",
        "opinion",
        "spinner",
        "monkey_count",
        "key_usage",
    ],
)
def test_identifiers_of_secrets_and_innocent_words_are_allowed(key):
    assert not is_secret_key(key)
    check_event(AuditEvent("admin.key.issue", "ok", details={key: "v"}))


def test_pem_private_key_in_a_value_is_redacted_not_refused():
    pem = "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----"
    event = check_event(AuditEvent("login", "denied", actor=pem, details={"note": [pem]}))
    assert event.actor == PEM_REDACTED and event.details["note"] == (PEM_REDACTED,)


@pytest.mark.parametrize(
    ("event", "match"),
    [
        (AuditEvent("Login", "ok"), "kind"),
        (AuditEvent("login..x", "ok"), "kind"),
        (AuditEvent("audit.checkpoint", "ok"), "written by the log"),
        (AuditEvent("login", "OK"), "outcome"),
        (AuditEvent("login", "ok", actor=7), "actor"),  # type: ignore[arg-type]
        (AuditEvent("login", "ok", details={"ratio": 0.5}), "float"),
        (AuditEvent("login", "ok", details={"nested": {"a": 1}}), "dict"),
        (AuditEvent("login", "ok", details={"l": [[1]]}), "plain values"),
        (AuditEvent("login", "ok", details={"l": list(range(300))}), "more than"),
        (AuditEvent("login", "ok", details={"bad key": 1}), "identifier"),
        (AuditEvent("login", "ok", details={f"k{i}": i for i in range(65)}), "at most"),
    ],
)
def test_malformed_events_are_refused(event, match):
    with pytest.raises(ValueError, match=match):
        check_event(event)


def test_peer_strings_are_cut_and_cleaned_not_refused():
    event = check_event(AuditEvent("login", "denied", actor="x" * 100_000, subject="bad\ud800name"))
    assert len(event.actor) == MAX_STRING and event.actor.endswith("(truncated)")
    assert event.subject == "bad?name"


def test_canonical_json_is_sorted_compact_utf8():
    assert (
        canonical_json({"b": 1, "a": ["é", None, True]}) == '{"a":["é",null,true],"b":1}'.encode()
    )


def test_record_line_is_the_canonical_form_and_parses_back():
    event = check_event(AuditEvent("session.start", "ok", actor="先生", details={"w": [1, "x"]}))
    prev = "0" * 64
    time = "2025-04-01T08:30:00.000001Z"
    record = AuditRecord(3, time, event, prev, chain.record_hash(3, time, event, prev))
    line = record_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert canonical_json(json.loads(line)) + b"\n" == line
    assert parse_record(line) == record


@pytest.mark.parametrize(
    "line",
    [b"not json\n", b"[]\n", b'{"seq":1}\n', b"{" * 100_000 + b"\n"],
)
def test_parse_record_rejects_malformed_lines(line):
    with pytest.raises(RecordFormatError):
        parse_record(line)


_text = st.text(max_size=40)
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), _text)


@given(
    actor=st.one_of(st.none(), _text),
    source=st.one_of(st.none(), _text),
    details=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
            lambda k: not is_secret_key(k)
        ),
        st.one_of(_scalar, st.lists(_scalar, max_size=5)),
        max_size=6,
    ),
)
def test_any_event_round_trips_byte_stable(actor, source, details):
    event = check_event(
        AuditEvent("redirection.clipboard", "blocked", actor=actor, source=source, details=details)
    )
    prev = "a" * 64
    time = "2030-01-01T00:00:00.000000Z"
    record = AuditRecord(9, time, event, prev, chain.record_hash(9, time, event, prev))
    line = record_line(record)
    again = parse_record(line)
    assert again == record
    assert record_line(again) == line
    assert chain.hash_matches(again)
