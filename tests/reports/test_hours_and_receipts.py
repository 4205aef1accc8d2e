"""Work-hours records from a real audit log (hash-chained, on disk) and signed work receipts:
every single changed byte of a receipt is refused; the /metrics address allow-list."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.events import AuditEvent
from gateway.audit.log import AuditLog
from gateway.audit.query import iter_records
from gateway.monitoring.endpoints import allowed, parse_networks
from gateway.reports import hours, receipt_key
from gateway.wire import receipt

JST = timezone(timedelta(hours=9))


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def session_events(log: AuditLog, clock: Clock, sid: str, user: str, school: str,
                   start: datetime, minutes: int, active: int | None) -> None:
    clock.now = start
    log.append(AuditEvent(kind="session.start", outcome="ok", actor=user, subject=user,
                          school=school, session=sid, source="198.51.100.4",
                          details={"desktop": ":5"}))
    if active is None:
        return
    clock.now = start + timedelta(minutes=minutes)
    log.append(AuditEvent(kind="session.end", outcome="ok", actor=user, subject=user,
                          school=school, session=sid, source="198.51.100.4",
                          details={"code": "normal", "reason": "The session ended.",
                                   "active_minutes": active, "idle_minutes": minutes - active}))


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    clock = Clock(datetime(2027, 3, 31, 14, 0, tzinfo=UTC))
    log = AuditLog.create(tmp_path / "audit", ec.generate_private_key(ec.SECP256R1()),
                          clock=clock)
    # 1 April 08:30 JST is still 31 March in UTC: the month is the school's (local) month.
    session_events(log, clock, "s-april-1", "t.sato", "kita-es",
                   datetime(2027, 3, 31, 23, 30, tzinfo=UTC), 95, 80)
    session_events(log, clock, "s-march", "t.sato", "kita-es",
                   datetime(2027, 3, 31, 10, 0, tzinfo=UTC), 30, 30)
    session_events(log, clock, "s-other-school", "t.ito", "minami-es",
                   datetime(2027, 4, 2, 1, 0, tzinfo=UTC), 60, 45)
    session_events(log, clock, "s-live", "t.sato", "kita-es",
                   datetime(2027, 4, 20, 1, 0, tzinfo=UTC), 0, None)
    session_events(log, clock, "s-cut", "t.sato", "kita-es",
                   datetime(2027, 4, 21, 1, 0, tzinfo=UTC), 0, None)
    for quarter, active in ((1, 10), (2, 22)):  # checkpoints; then the gateway stopped
        clock.now = datetime(2027, 4, 21, 1, 15 * quarter, tzinfo=UTC)
        log.append(AuditEvent(kind="session.activity", outcome="ok", actor="t.sato",
                              subject="t.sato", school="kita-es", session="s-cut", source=None,
                              details={"active_minutes": active,
                                       "idle_minutes": 15 * quarter - active}))
    log.append(AuditEvent(kind="session.start", outcome="error", actor="t.mori",
                          subject="t.mori", school="kita-es", session="s-failed", source=None,
                          details={"error": "no desktop"}))
    log.close()
    return tmp_path / "audit"


def sheet(audit_dir: Path, **kw: str) -> list[hours.WorkSession]:
    month = hours.Month.parse("2027-04")
    since, until = hours.search_window(month, JST)
    records = iter_records(audit_dir, kind="session", since=since, until=until,
                           school=kw.get("school"), user=kw.get("user"))
    return hours.work_sessions(records, month, tz=JST, **kw)  # type: ignore[arg-type]


def test_a_month_lists_each_session_with_its_minutes(audit_dir: Path) -> None:
    rows = sheet(audit_dir, school="kita-es")
    assert [w.session for w in rows] == ["s-april-1", "s-live", "s-cut"]
    first = rows[0]
    assert (first.start, first.end) == ("2027-04-01T08:30:00+09:00", "2027-04-01T10:05:00+09:00")
    assert (first.active_minutes, first.idle_minutes, first.ended_by) == (80, 15, "normal")
    assert first.complete and not rows[1].complete and rows[1].end == ""
    cut = rows[2]  # no end: the last checkpoint's figures, marked incomplete
    assert (cut.end, cut.active_minutes, cut.idle_minutes, cut.complete) == (
        "2027-04-21T10:30:00+09:00", 22, 8, False)
    assert hours.totals(rows) == [{"user": "t.sato", "school": "kita-es", "sessions": 3,
                                   "active_minutes": 102, "idle_minutes": 23}]


def test_school_and_user_filters(audit_dir: Path) -> None:
    assert [w.session for w in sheet(audit_dir, school="minami-es")] == ["s-other-school"]
    assert [w.session for w in sheet(audit_dir, user="t.ito")] == ["s-other-school"]
    assert sheet(audit_dir, school="kita-es", user="t.ito") == []


def test_csv_has_a_header_and_neutralises_formulas() -> None:
    rows = [hours.WorkSession("=cmd|' /C calc'!A0", "kita-es", "s1", "2027-04-01T08:30:00+09:00",
                              "", 0, 1, "", False)]
    table = list(csv.reader(io.StringIO(hours.to_csv(rows))))
    assert table[0][:4] == ["user", "name", "school", "session"]
    assert table[1][0].startswith("'=") and table[1][-1] == "false"


@pytest.mark.parametrize("text", ["2027-4", "2027-13", "April", "", "2027-04-01", "1999-12"])
def test_month_must_be_yyyy_mm(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        hours.Month.parse(text)


# --- receipts --------------------------------------------------------------------------------

def signed(key: Ed25519PrivateKey) -> bytes:
    return receipt.sign(receipt.WorkReceipt(
        session="6864023a22b215936d99", user="t.sato", school="kita-es",
        start="2027-04-01T08:30:00+00:00", end="2027-04-01T10:05:00+00:00", active_minutes=80,
        idle_minutes=15, gateway="gw.kita.example"), key)


def test_a_receipt_verifies_and_every_changed_byte_fails() -> None:
    key = Ed25519PrivateKey.generate()
    data = signed(key)
    fields = receipt.verify(data, [key.public_key()])
    assert fields["active_minutes"] == 80 and fields["user"] == "t.sato"
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    for i in range(len(data)):
        for flip in (0x01, 0x20):
            changed = bytearray(data)
            changed[i] ^= flip
            with pytest.raises(receipt.ReceiptError):
                receipt.verify(bytes(changed), [key.public_key()])
    with pytest.raises(receipt.ReceiptError):
        receipt.verify(data + b"\n", [key.public_key()])
    with pytest.raises(receipt.ReceiptError):
        receipt.verify(data[:-1], [key.public_key()])


def test_another_gateways_key_does_not_verify() -> None:
    data = signed(Ed25519PrivateKey.generate())
    with pytest.raises(receipt.ReceiptError, match="not signed by this gateway"):
        receipt.verify(data, [Ed25519PrivateKey.generate().public_key()])


def test_receipt_travels_in_a_tunnel_frame() -> None:
    data = signed(Ed25519PrivateKey.generate())
    assert receipt.from_tunnel_frame(receipt.tunnel_frame(data)) == data
    assert receipt.from_tunnel_frame('{"type":"posture"}') is None
    assert receipt.from_tunnel_frame("[" * 5000) is None


def test_receipt_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    key = receipt_key.load_or_create(tmp_path)
    path = receipt_key.key_path(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = receipt_key.load_or_create(tmp_path)
    assert receipt_key.public_pem(again) == receipt_key.public_pem(key)
    assert receipt_key.load_public(receipt_key.public_pem(key)) is not None


# --- /metrics allow-list ---------------------------------------------------------------------

@pytest.mark.parametrize(("address", "ok"), [
    ("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True), ("10.1.2.3", True),
    ("10.2.0.1", False), ("192.0.2.1", False), ("", False), ("not-an-ip", False), (None, False),
])
def test_metrics_allow_list(address: str | None, ok: bool) -> None:
    nets = parse_networks(["127.0.0.0/8", "::1/128", "10.1.0.0/16"])
    assert allowed(address, nets) is ok


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_networks(["10.0.0.300"])


@given(st.binary(max_size=600))
def test_any_bytes_are_a_receipt_or_a_clean_refusal(data: bytes) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(receipt.ReceiptError):
        receipt.verify(data, [key])


# --- metrics ---------------------------------------------------------------------------------

def test_frames_and_bytes_stay_counted_after_sessions_end() -> None:
    from types import SimpleNamespace

    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from gateway.monitoring.metrics import Metrics

    live = [SimpleNamespace(ended=False, ws=object(), frames_sent=10, bytes_sent=1000),
            SimpleNamespace(ended=False, ws=None, frames_sent=5, bytes_sent=500)]
    m = Metrics(lambda: live)

    def scrape() -> dict[str, float]:
        text = generate_latest(m.registry).decode()
        return {s.name: s.value for f in text_string_to_metric_families(text)
                for s in f.samples if not s.labels}

    first = scrape()
    assert first["staffroom_live_sessions"] == 2 and first["staffroom_attached_sessions"] == 1
    assert first["staffroom_frames_sent_total"] == 15
    gone = live.pop()
    m.sessions.session_ended(gone.frames_sent, gone.bytes_sent)
    live[0].frames_sent += 1
    after = scrape()
    assert after["staffroom_live_sessions"] == 1
    assert after["staffroom_frames_sent_total"] == 16
    assert after["staffroom_bytes_sent_total"] == 1500
    m.logins.labels("denied", "definitions-stale").inc()
    assert 'staffroom_logins_total{code="definitions-stale",outcome="denied"} 1.0' in \
        generate_latest(m.registry).decode()
