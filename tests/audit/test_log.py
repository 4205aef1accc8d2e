from __future__ import annotations

import asyncio
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit import chain
from gateway.audit.events import (
    KIND_CHECKPOINT,
    KIND_CREATED,
    AuditEvent,
    AuditRecord,
    check_event,
    parse_record,
    record_line,
)
from gateway.audit.log import AuditLog, AuditLogError, AuditWriteFailed
from gateway.audit.query import iter_records, tail
from gateway.audit.verify import verify
from tests.audit.helpers import abandon, fill, lines, write_lines


def test_create_append_reopen_continues_the_chain(tmp_path, audit_signing_key):
    directory = tmp_path / "audit"
    with AuditLog.create(directory, audit_signing_key, checkpoint_every=1000) as log:
        first = fill(log, 3)
    assert [r.seq for r in first] == [1, 2, 3]
    assert (directory / "audit.log").stat().st_mode & 0o777 == 0o600
    with AuditLog(directory, audit_signing_key, checkpoint_every=1000) as log:
        assert log.last_seq == 4  # close() appended a checkpoint
        more = fill(log, 2)
    assert [r.seq for r in more] == [5, 6]
    assert more[0].prev_hash == tail(directory, 4)[0].hash
    records = list(iter_records(directory))
    assert [r.kind for r in records] == [
        KIND_CREATED,
        "login",
        "login",
        "login",
        KIND_CHECKPOINT,
        "login",
        "login",
        KIND_CHECKPOINT,
    ]
    result = verify(directory, audit_signing_key.public_key())
    assert result.ok, result.message
    assert result.records == 8 and result.last_checkpoint[0] == 7


def test_times_are_utc_iso8601_with_microseconds(tmp_path, audit_signing_key):
    moment = datetime(2025, 4, 1, 17, 30, 0, 5, tzinfo=UTC) + timedelta(hours=0)
    tokyo = moment.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    with AuditLog.create(tmp_path / "a", audit_signing_key, clock=lambda: tokyo) as log:
        record = log.append(AuditEvent("session.end", "ok"))
    assert record.time == "2025-04-01T17:30:00.000005Z"
    assert record.when == moment


def test_checkpoints_every_n_records_on_demand_and_on_close(audit_log):
    fill(audit_log, 12)  # checkpoint_every=5: records 1-5, checkpoint 6, 7-11, checkpoint 12
    kinds = [r.kind for r in iter_records(audit_log.directory)]
    assert [i for i, k in enumerate(kinds) if k == KIND_CHECKPOINT] == [6, 12]
    assert audit_log.checkpoint().seq == 15
    audit_log.close()
    assert tail(audit_log.directory, 1)[0].seq == 15  # nothing new since the last checkpoint


def test_head_file_is_signed_and_follows_every_append(audit_log, audit_signing_key):
    record = audit_log.append(AuditEvent("login", "ok", actor="t1"))
    head = chain.read_head(audit_log.directory)
    assert (head.seq, head.hash, head.log_id) == (record.seq, record.hash, audit_log.log_id)
    assert head.valid(audit_signing_key.public_key())
    assert not head.valid(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert not (audit_log.directory / "audit.head.tmp").exists()


def test_fsync_of_the_record_happens_before_append_returns(audit_log, monkeypatch):
    calls = []
    real_fsync = os.fsync
    log_path = str(audit_log.directory / "audit.log")

    def recording_fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        content = None
        if os.path.isfile(target):
            with open(target, "rb") as f:
                content = f.read()
        calls.append((target, content))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    record = audit_log.append(AuditEvent("admin.user.create", "ok", actor="cio", subject="t9"))
    monkeypatch.undo()
    last_line = lines(audit_log.directory)[-1]
    assert str(record.seq) in last_line.decode()
    log_syncs = [content for target, content in calls if target == log_path]
    assert log_syncs and log_syncs[0].endswith(last_line)  # the line was there when fsynced
    assert calls[0][0] == log_path  # the record is durable before its head is written
    # ...then the head: its temporary file, then (after the rename) the directory entry.
    targets = [target for target, _ in calls]
    head_tmp = str(audit_log.directory / "audit.head.tmp")
    assert targets == [log_path, head_tmp, str(audit_log.directory)]


def test_a_failed_fsync_fails_the_append_and_leaves_no_record(
    audit_log, audit_signing_key, monkeypatch
):
    fill(audit_log, 2)
    before = lines(audit_log.directory)

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(AuditWriteFailed, match="Input/output error"):
        audit_log.append(AuditEvent("login", "ok", actor="lost"))
    assert audit_log.write_error is not None
    monkeypatch.undo()
    assert lines(audit_log.directory) == before
    audit_log.append(AuditEvent("login", "ok", actor="after"))
    assert verify(audit_log.directory, audit_signing_key.public_key()).ok


def test_concurrent_appends_from_threads_keep_the_chain_valid(tmp_path, audit_signing_key):
    log = AuditLog.create(tmp_path / "a", audit_signing_key, checkpoint_every=7)
    barrier = threading.Barrier(6)

    def worker(n):
        barrier.wait()
        for i in range(40):
            log.append(AuditEvent("session.start", "ok", actor=f"w{n}-{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    log.close()
    result = verify(tmp_path / "a", audit_signing_key.public_key())
    assert result.ok, result.message
    actors = [r.actor for r in iter_records(tmp_path / "a") if r.kind == "session.start"]
    assert sorted(actors) == sorted(f"w{n}-{i}" for n in range(6) for i in range(40))


async def test_aappend_runs_in_the_executor(audit_log, audit_signing_key):
    records = await asyncio.gather(
        *(audit_log.aappend(AuditEvent("login", "ok", actor=f"a{i}")) for i in range(20))
    )
    assert sorted(r.seq for r in records if r.kind == "login") == sorted(
        r.seq for r in iter_records(audit_log.directory, kind="login")
    )
    assert verify(audit_log.directory, audit_signing_key.public_key()).ok


def test_second_opener_is_refused_while_the_log_is_open(audit_log, audit_signing_key):
    with pytest.raises(AuditLogError, match="open in another process"):
        AuditLog(audit_log.directory, audit_signing_key)


def test_create_refuses_an_existing_log_and_open_refuses_a_missing_one(
    audit_log, tmp_path, audit_signing_key
):
    with pytest.raises(AuditLogError, match="already an audit log"):
        AuditLog.create(audit_log.directory, audit_signing_key)
    with pytest.raises(AuditLogError, match="no audit log"):
        AuditLog(tmp_path / "nowhere", audit_signing_key)


def test_only_p256_keys_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="P-256"):
        AuditLog.create(tmp_path / "a", ec.generate_private_key(ec.SECP384R1()))


def test_oversized_peer_input_is_shortened_but_still_recorded(audit_log, audit_signing_key):
    hostile = "\x01" * 100_000  # each escapes to 6 bytes of JSON
    record = audit_log.append(
        AuditEvent(
            "login",
            "denied",
            actor=hostile,
            subject=hostile,
            source=hostile,
            details={"name": hostile, "tries": [hostile] * 200},
        )
    )
    assert record.details["audit_shrunk"] == "strings shortened"
    assert record.actor.startswith("\x01") and len(record.actor) == 256
    many = {f"k{i}": ["\x01" * 300] * 256 for i in range(64)}
    record = audit_log.append(AuditEvent("admin.policy.update", "ok", details=many))
    assert dict(record.details) == {"audit_shrunk": "details dropped"}
    assert verify(audit_log.directory, audit_signing_key.public_key()).ok


def test_closed_log_refuses_appends(audit_log):
    audit_log.close()
    with pytest.raises(AuditLogError, match="closed"):
        audit_log.append(AuditEvent("login", "ok"))


# --- reopening a damaged log -----------------------------------------------------------------


@pytest.fixture
def closed_log(tmp_path, audit_signing_key):
    directory = tmp_path / "audit"
    with AuditLog.create(directory, audit_signing_key, checkpoint_every=4) as log:
        fill(log, 6)
    return directory


def test_reopen_refuses_a_log_cut_mid_line(closed_log, audit_signing_key):
    data = lines(closed_log)
    write_lines(closed_log, [*data[:-1], data[-1][:40]])
    with pytest.raises(AuditLogError, match="incomplete record after record"):
        AuditLog(closed_log, audit_signing_key)


def test_reopen_refuses_a_changed_last_record(closed_log, audit_signing_key):
    data = lines(closed_log)
    write_lines(closed_log, [*data[:-1], data[-1].replace(b'"ok"', b'"no"')])
    with pytest.raises(AuditLogError, match="was changed"):
        AuditLog(closed_log, audit_signing_key)


def test_reopen_refuses_when_records_were_removed_from_the_end(closed_log, audit_signing_key):
    write_lines(closed_log, lines(closed_log)[:-2])
    with pytest.raises(AuditLogError, match="signed head says"):
        AuditLog(closed_log, audit_signing_key)


def test_reopen_refuses_without_head_or_with_another_key(closed_log, audit_signing_key):
    with pytest.raises(AuditLogError, match="does not verify"):
        AuditLog(closed_log, ec.generate_private_key(ec.SECP256R1()))
    (closed_log / "audit.head").unlink()
    with pytest.raises(AuditLogError, match="missing"):
        AuditLog(closed_log, audit_signing_key)


def test_reopen_accepts_one_record_past_the_head_after_a_crash(
    closed_log, audit_signing_key, monkeypatch
):
    old_head = (closed_log / "audit.head").read_bytes()
    with AuditLog(closed_log, audit_signing_key, checkpoint_every=1000) as log:
        monkeypatch.setattr(chain, "write_head", lambda *a: None)  # crash before the head moves
        log.append(AuditEvent("session.end", "ok", actor="t1"))
        monkeypatch.undo()
        abandon(log)
    assert (closed_log / "audit.head").read_bytes() == old_head
    with AuditLog(closed_log, audit_signing_key) as log:
        assert chain.read_head(closed_log).seq == log.last_seq
        recovered = tail(closed_log, 1)[0]
        assert recovered.kind == "audit.recovered"
        assert recovered.details["unsigned_seq"] == recovered.seq - 1
    assert verify(closed_log, audit_signing_key.public_key()).ok


def test_a_deleted_log_is_not_silently_replaced(closed_log, audit_signing_key):
    (closed_log / "audit.log").unlink()
    with pytest.raises(AuditLogError, match="deleted or moved"):
        AuditLog.open_or_create(closed_log, audit_signing_key)


def test_a_new_log_whose_head_was_never_written_is_opened(tmp_path, audit_signing_key):
    AuditLog.create(tmp_path / "a", audit_signing_key).close()
    data = lines(tmp_path / "a")
    write_lines(tmp_path / "a", data[:1])  # only the creation record, as after a crash
    (tmp_path / "a" / "audit.head").unlink()
    with AuditLog(tmp_path / "a", audit_signing_key) as log:
        assert log.last_seq == 0
    assert verify(tmp_path / "a", audit_signing_key.public_key()).ok


def test_reopen_refuses_an_unlinked_record_past_the_head(closed_log, audit_signing_key):
    data = lines(closed_log)
    last = parse_record(data[-1])
    event = AuditEvent("login", "ok", actor="intruder")
    seq, prev = last.seq + 1, "0" * 64  # self-consistent, but not chained to the head
    forged = AuditRecord(
        seq,
        last.time,
        check_event(event),
        prev,
        chain.record_hash(seq, last.time, check_event(event), prev),
    )
    write_lines(closed_log, [*data, record_line(forged)])
    with pytest.raises(AuditLogError, match="signed head says"):
        AuditLog(closed_log, audit_signing_key)


def test_a_record_cut_mid_line_by_a_crash_is_dropped_on_reopen(closed_log, audit_signing_key):
    """SIGKILL while writing a line: the head never named it, so no one was told it was
    stored; reopening cuts it off, says so in the log, and the log verifies."""
    data = lines(closed_log)
    half = b'{"seq":99,"time":"2026-'
    write_lines(closed_log, [*data, half])
    with AuditLog(closed_log, audit_signing_key) as log:
        recovered = tail(closed_log, 1)[0]
        assert recovered.kind == "audit.recovered" and log.last_seq == recovered.seq
        assert recovered.details["dropped_bytes"] == len(half)
    assert lines(closed_log)[: len(data)] == data
    assert verify(closed_log, audit_signing_key.public_key()).ok


def test_a_head_that_cannot_be_written_takes_the_record_back(audit_log, audit_signing_key,
                                                             monkeypatch):
    """Disk full after the record but before the signed head: the append fails whole, so the
    log never holds more than the head names, and carries on once there is space."""
    import errno

    fill(audit_log, 2)
    before = lines(audit_log.directory)

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(chain, "write_head", full)
    with pytest.raises(AuditWriteFailed, match="disk is full"):
        audit_log.append(AuditEvent("user.disable", "ok", actor="admin"))
    monkeypatch.undo()
    assert lines(audit_log.directory) == before
    assert audit_log.write_error == "The audit log cannot be written because the disk is full."
    record = audit_log.append(AuditEvent("user.disable", "ok", actor="admin"))
    assert audit_log.write_error is None
    assert chain.read_head(audit_log.directory).seq == record.seq
    assert verify(audit_log.directory, audit_signing_key.public_key()).ok
