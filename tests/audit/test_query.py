from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from gateway.audit.events import AuditEvent, RecordFormatError
from gateway.audit.log import AuditLog
from gateway.audit.query import CSV_COLUMNS, export_csv, export_jsonl, iter_records, tail
from tests.audit.helpers import lines, write_lines

START = datetime(2025, 4, 1, 8, 0, tzinfo=UTC)


class StepClock:
    """A fake clock at the Clock seam: one minute later on every call."""

    def __init__(self) -> None:
        self.now = START - timedelta(minutes=1)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def log_dir(tmp_path, audit_signing_key):
    directory = tmp_path / "audit"
    with AuditLog.create(
        directory, audit_signing_key, checkpoint_every=100, clock=StepClock()
    ) as log:  # record 0 at 08:00
        log.append(AuditEvent("login", "ok", actor="tanaka", school="north", source="192.0.2.1"))
        log.append(AuditEvent("session.start", "ok", actor="tanaka", school="north", session="s1"))
        log.append(
            AuditEvent("admin.user.disable", "ok", actor="cio1", subject="tanaka", school="north")
        )
        log.append(
            AuditEvent(
                "login",
                "denied",
                actor="suzuki",
                school="south",
                details={"reasons": ["posture.antivirus_stale"]},
            )
        )
        log.append(
            AuditEvent(
                "redirection.clipboard",
                "blocked",
                actor="suzuki",
                school="south",
                session="s2",
                details={"bytes": 120},
            )
        )
        log.append(AuditEvent("session.end", "ok", actor="tanaka", school="north", session="s1"))
    return directory  # records 0-6 at 08:00-08:06, closing checkpoint 7 at 08:07


def _seqs(records):
    return [r.seq for r in records]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [0, 1, 2, 3, 4, 5, 6, 7]),
        ({"user": "tanaka"}, [1, 2, 3, 6]),  # actor or subject
        ({"user": "suzuki"}, [4, 5]),
        ({"school": "south"}, [4, 5]),
        ({"kind": "login"}, [1, 4]),
        ({"kind": "session"}, [2, 6]),  # dotted prefix
        ({"kind": "sess"}, []),  # but not a bare string prefix
        ({"kind": "admin.user.disable"}, [3]),
        ({"since": START + timedelta(minutes=4)}, [4, 5, 6, 7]),  # inclusive
        ({"until": START + timedelta(minutes=2)}, [0, 1]),  # exclusive
        (
            {
                "since": START + timedelta(minutes=1),
                "until": START + timedelta(minutes=5),
                "school": "north",
            },
            [1, 2, 3],
        ),
        ({"user": "tanaka", "kind": "session", "school": "south"}, []),
    ],
)
def test_iter_records_filters(log_dir, filters, expected):
    assert _seqs(iter_records(log_dir, **filters)) == expected


def test_since_in_another_time_zone_means_the_same_instant(log_dir):
    from zoneinfo import ZoneInfo

    tokyo = (START + timedelta(minutes=6)).astimezone(ZoneInfo("Asia/Tokyo"))
    assert _seqs(iter_records(log_dir, since=tokyo)) == [6, 7]


def test_tail_returns_the_last_records_oldest_first(log_dir):
    assert _seqs(tail(log_dir, 3)) == [5, 6, 7]
    assert _seqs(tail(log_dir, 100)) == list(range(8))
    assert tail(log_dir, 0) == []


def test_tail_and_iteration_skip_a_line_being_written(log_dir):
    data = lines(log_dir)
    write_lines(log_dir, [*data, b'{"seq":8,"ti'])
    assert _seqs(tail(log_dir, 2)) == [6, 7]
    assert _seqs(iter_records(log_dir))[-1] == 7


def test_damaged_line_raises_a_clear_error(log_dir):
    data = lines(log_dir)
    data[3] = b"{broken\n"
    write_lines(log_dir, data)
    with pytest.raises(RecordFormatError, match=r"line 4 of audit\.log is damaged"):
        list(iter_records(log_dir))


def test_tail_over_many_blocks(tmp_path, audit_signing_key):
    with AuditLog.create(tmp_path / "big", audit_signing_key, checkpoint_every=10_000) as log:
        for i in range(300):
            log.append(AuditEvent("login", "ok", actor=f"u{i}", details={"pad": "x" * 900}))
    assert [r.actor for r in tail(tmp_path / "big", 120)] == [
        *(f"u{i}" for i in range(181, 300)),
        None,  # the closing checkpoint has no actor
    ]


def test_jsonl_export_is_byte_identical_to_the_stored_lines(log_dir):
    out = io.BytesIO()
    assert export_jsonl(iter_records(log_dir, school="north"), out) == 4
    stored = [line for line in lines(log_dir) if b'"school":"north"' in line]
    assert out.getvalue() == b"".join(stored)
    assert all(json.loads(line)["hash"] for line in out.getvalue().splitlines())


def test_csv_export_escapes_and_defuses_formulas(tmp_path, audit_signing_key):
    nasty = 'a,b "quoted"\nsecond line'
    directory = tmp_path / "csv"
    with AuditLog.create(directory, audit_signing_key) as log:
        log.append(
            AuditEvent(
                "login",
                "denied",
                actor=nasty,
                subject='=HYPERLINK("http://x")',
                school="+north",
                source="-1+1",
                session="@SUM(A1)",
                details={"note": nasty, "count": 2},
            )
        )
    out = io.StringIO(newline="")
    assert export_csv(iter_records(directory, kind="login"), out) == 1
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    row = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert row["actor"] == nasty  # comma, quote and newline survive the round trip
    assert row["subject"] == '\'=HYPERLINK("http://x")'
    assert row["school"] == "'+north"
    assert row["source"] == "'-1+1"
    assert row["session"] == "'@SUM(A1)"
    assert json.loads(row["details"]) == {"count": 2, "note": nasty}
    assert row["kind"] == "login" and row["seq"] == "1" and len(row["hash"]) == 64
    assert out.getvalue().count("\r\n") >= 2


def test_export_streams_in_flat_memory(log_dir):
    # 2 MB of records (query does not check the chain, so copies of one line will do).
    data = lines(log_dir)
    write_lines(log_dir, data[:4] + [data[4]] * 6000)
    assert (log_dir / "audit.log").stat().st_size > 2_000_000

    class Sink(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            return len(b)

    tracemalloc.start()
    try:
        count = export_jsonl(iter_records(log_dir, user="suzuki"), Sink())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 6000
    assert peak < 300_000, peak
