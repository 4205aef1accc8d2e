from __future__ import annotations

import re
import threading
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit import chain
from gateway.audit import verify as verify_module
from gateway.audit.events import AuditEvent, parse_record, record_line
from gateway.audit.log import AuditLog
from gateway.audit.verify import verify
from tests.audit.helpers import abandon, fill, lines, rewrite_chain, write_lines


@pytest.fixture
def log_dir(tmp_path, audit_signing_key):
    """A closed log: record 0, logins 1-5, checkpoint 6, logins 7-10, closing checkpoint 11."""
    directory = tmp_path / "audit"
    with AuditLog.create(directory, audit_signing_key, checkpoint_every=5) as log:
        fill(log, 9)
    return directory


@pytest.fixture
def public_key(audit_signing_key):
    return audit_signing_key.public_key()


@pytest.fixture(autouse=True)
def _quick_settle(monkeypatch):
    monkeypatch.setattr(verify_module, "_HEAD_SETTLE_SECONDS", 0.05)


def test_an_untouched_log_verifies(log_dir, public_key):
    result = verify(log_dir, public_key)
    assert result.ok, result.message
    assert result.records == 12 and result.first_bad_seq is None
    assert result.last_checkpoint[0] == 11
    assert result.message.startswith(
        "All 12 records are intact; the last signed checkpoint is record 11"
    )


def test_the_tamper_helper_is_faithful(log_dir, audit_signing_key, public_key):
    # Rewriting with the real key must verify, or the failures below would prove nothing.
    rewrite_chain(log_dir, lambda records: records, signer=audit_signing_key)
    assert verify(log_dir, public_key).ok


def _field_offset(line: bytes, pattern: bytes, skip: int = 0) -> int:
    return re.search(pattern, line).start() + skip


_POSITIONS = {
    "opening brace": lambda line: 0,
    "actor value": lambda line: _field_offset(line, rb'"actor":"', 10),
    "details value": lambda line: _field_offset(line, rb'"method":"', 10),
    "details number": lambda line: _field_offset(line, rb'"attempt":', 10),
    "hash digit": lambda line: _field_offset(line, rb'"hash":"', 20),
    "kind": lambda line: _field_offset(line, rb'"kind":"', 8),
    "outcome": lambda line: _field_offset(line, rb'"outcome":"', 11),
    "prev_hash digit": lambda line: _field_offset(line, rb'"prev_hash":"', 40),
    "school": lambda line: _field_offset(line, rb'"school":"', 10),
    "seq digit": lambda line: _field_offset(line, rb'"seq":', 6),
    "time microsecond": lambda line: _field_offset(line, rb'"time":"', 30),
    "a key name": lambda line: _field_offset(line, rb'"source"', 2),
    "closing brace": lambda line: len(line) - 2,
    "newline": lambda line: len(line) - 1,
}


@pytest.mark.parametrize("where", sorted(_POSITIONS))
def test_changing_one_byte_of_a_record_is_detected(log_dir, public_key, where):
    data = lines(log_dir)
    line = bytearray(data[7])
    offset = _POSITIONS[where](bytes(line))
    line[offset] = ord("7") if line[offset] != ord("7") else ord("8")
    data[7] = bytes(line)
    write_lines(log_dir, data)
    result = verify(log_dir, public_key)
    assert not result.ok
    assert result.first_bad_seq == 7, result.message
    assert result.message.startswith("Record 7 "), result.message


def test_changing_any_single_byte_anywhere_is_detected(log_dir, public_key):
    data = lines(log_dir)
    original = b"".join(data)
    path = log_dir / "audit.log"
    start = len(b"".join(data[:3]))
    for offset in range(start, start + len(data[3])):  # every byte of record 3
        for value in (original[offset] ^ 0x01, original[offset] ^ 0x20):
            changed = bytearray(original)
            changed[offset] = value
            path.write_bytes(bytes(changed))
            result = verify(log_dir, public_key)
            assert not result.ok, (offset, value)
            assert result.first_bad_seq in (3, 4), (offset, result.message)


def test_changed_record_message_names_it(log_dir, public_key):
    data = lines(log_dir)
    data[7] = data[7].replace(b"teacher", b"teachar")
    write_lines(log_dir, data)
    result = verify(log_dir, public_key)
    assert result.message == "Record 7 was changed: its hash does not match its contents."
    assert result.records == 7 and result.last_checkpoint[0] == 6


def test_a_self_consistent_forged_record_breaks_the_link_to_the_next(log_dir, public_key):
    # The forger recomputes the forged record's own hash but cannot fix the record after it.
    data = lines(log_dir)
    forged = parse_record(data[8])
    event = replace(forged.event, actor="someone_else")
    new_hash = chain.record_hash(forged.seq, forged.time, event, forged.prev_hash)
    data[8] = record_line(replace(forged, event=event, hash=new_hash))
    write_lines(log_dir, data)
    result = verify(log_dir, public_key)
    assert not result.ok and result.first_bad_seq == 9
    assert result.message == (
        "Record 9 does not link to record 8: one of them was replaced, or records were removed "
        "between them."
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"actor":"teacher', b'"actor":"mallory","actor":"teacher'),  # duplicate key
        (b',"details":', b', "details":'),  # whitespace: same JSON value, other bytes
        (b'"school":"north"', rb'"school":"\u006eorth"'),  # escaped but equal string
    ],
)
def test_non_canonical_rewrites_that_parse_the_same_are_detected(log_dir, public_key, old, new):
    data = lines(log_dir)
    assert old in data[8]
    data[8] = data[8].replace(old, new, 1)
    write_lines(log_dir, data)
    result = verify(log_dir, public_key)
    assert not result.ok and result.first_bad_seq == 8
    assert result.message == "Record 8 was changed: it is not in the exact form the log writes."


def test_removing_the_last_record_is_detected(log_dir, public_key):
    write_lines(log_dir, lines(log_dir)[:-1])
    result = verify(log_dir, public_key)
    assert not result.ok and result.first_bad_seq == 11
    assert result.message == (
        "The log ends at record 10 but its signed head says 11: records were removed from the end."
    )


def test_removing_the_last_record_and_the_head_is_detected(log_dir, public_key):
    write_lines(log_dir, lines(log_dir)[:-1])
    (log_dir / "audit.head").unlink()
    result = verify(log_dir, public_key)
    assert not result.ok and "audit.head is missing" in result.message


def test_removing_a_middle_record_is_detected(log_dir, public_key):
    data = lines(log_dir)
    write_lines(log_dir, data[:4] + data[5:])
    result = verify(log_dir, public_key)
    assert not result.ok and result.first_bad_seq == 4
    assert result.message == "Record 4 is missing: the next record in the file is 5."


def test_removing_a_middle_record_and_renumbering_is_detected(log_dir, public_key):
    rewrite_chain(log_dir, lambda records: records[:3] + records[4:])
    result = verify(log_dir, public_key)
    assert not result.ok
    assert result.first_bad_seq == 5, result.message  # the checkpoint now at 5 signed another chain
    assert "checkpoint whose signature does not verify" in result.message


def test_truncating_mid_line_is_detected(log_dir, public_key):
    raw = (log_dir / "audit.log").read_bytes()
    (log_dir / "audit.log").write_bytes(raw[:-50])
    result = verify(log_dir, public_key)
    assert not result.ok and result.first_bad_seq == 11
    assert result.message == (
        "Record 11 is incomplete: the log was cut off in the middle of a line."
    )


def test_forged_checkpoint_signature_is_detected(log_dir, public_key):
    forger = ec.generate_private_key(ec.SECP256R1())
    rewrite_chain(log_dir, lambda records: records, signer=forger)
    result = verify(log_dir, public_key)
    assert not result.ok and result.first_bad_seq == 6
    assert result.message == (
        "Record 6 is a checkpoint whose signature does not verify: it was "
        "forged, or this is not the log's public key."
    )


def test_checkpoint_signature_swapped_from_another_checkpoint_is_detected(log_dir, public_key):
    def swap(records):
        sig = records[11].details["signature"]
        records[6] = replace(
            records[6],
            event=replace(records[6].event, details={**records[6].details, "signature": sig}),
        )
        return records

    rewrite_chain(log_dir, swap)
    result = verify(log_dir, public_key)
    assert not result.ok and result.first_bad_seq == 6


def test_edit_with_recomputed_hashes_is_caught_by_the_next_checkpoint(log_dir, public_key):
    def edit(records):
        records[7] = replace(
            records[7], event=replace(records[7].event, outcome="ok", actor="someone_else")
        )
        return records

    rewrite_chain(log_dir, edit)
    result = verify(log_dir, public_key)
    assert not result.ok and result.first_bad_seq == 11, result.message


def test_edit_after_the_last_checkpoint_is_caught_by_the_head(tmp_path, audit_signing_key):
    directory = tmp_path / "a"
    log = AuditLog.create(directory, audit_signing_key, checkpoint_every=100)
    fill(log, 3)
    abandon(log)
    rewrite_chain(
        directory, lambda r: [*r[:3], replace(r[3], event=replace(r[3].event, actor="x"))]
    )
    result = verify(directory, audit_signing_key.public_key())
    assert not result.ok and result.first_bad_seq == 3
    assert (
        result.message
        == "Record 3 does not match the signed head: the end of the log was replaced."
    )


def test_records_appended_without_the_key_are_detected(log_dir, public_key):
    def add(records):
        extra = replace(records[11], event=AuditEvent("login", "ok", actor="intruder"))
        return [*records, extra]

    rewrite_chain(log_dir, add)
    result = verify(log_dir, public_key)
    assert not result.ok and result.first_bad_seq == 12
    assert "past its signed head" in result.message


def test_wrong_public_key_fails(log_dir):
    result = verify(log_dir, ec.generate_private_key(ec.SECP256R1()).public_key())
    assert not result.ok and "checkpoint" in result.message


def test_head_from_another_log_fails(tmp_path, log_dir, audit_signing_key, public_key):
    with AuditLog.create(tmp_path / "other", audit_signing_key) as other:
        fill(other, 11)
    (log_dir / "audit.head").write_bytes((tmp_path / "other" / "audit.head").read_bytes())
    result = verify(log_dir, public_key)
    assert not result.ok and "another log" in result.message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"garbage\n", "Record 0 was changed: it is not valid JSON."),
        (b"x" * 70_000, "longer than 64 KiB"),
    ],
)
def test_garbage_logs_fail_cleanly(log_dir, public_key, content, expected):
    (log_dir / "audit.log").write_bytes(content)
    result = verify(log_dir, public_key)
    assert not result.ok and expected in result.message


def test_missing_log_fails_cleanly(tmp_path, public_key):
    result = verify(tmp_path, public_key)
    assert not result.ok and "There is no audit log" in result.message


def test_verify_while_the_gateway_appends(tmp_path, audit_signing_key, monkeypatch):
    """Verifications that run while the gateway appends never report the log as broken. The
    writer holds its 150 records back until the first verification starts, so at least that
    one overlaps the appends however the two threads are scheduled (a writer that finished
    before the first verification, on a busy machine, made this test prove nothing)."""
    monkeypatch.setattr(verify_module, "_HEAD_SETTLE_SECONDS", 2.0)
    directory = tmp_path / "live"
    log = AuditLog.create(directory, audit_signing_key, checkpoint_every=10)
    verifying, done = threading.Event(), threading.Event()

    def writer():
        try:
            verifying.wait(timeout=60)
            fill(log, 150)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    results, overlapping = [], 0
    while not done.is_set() or not results:
        overlapping += not done.is_set()  # the writer had not finished when this one started
        verifying.set()
        results.append(verify(directory, audit_signing_key.public_key()))
    thread.join(timeout=60)
    log.close()
    bad = [r.message for r in results if not r.ok]
    assert not bad, bad[:3]
    assert overlapping >= 1 and len(lines(directory)) >= 150


def test_one_record_past_the_head_names_the_crash_window(log_dir, audit_signing_key, public_key):
    head = (log_dir / "audit.head").read_bytes()
    with AuditLog(log_dir, audit_signing_key) as log:
        log.append(AuditEvent("session.end", "ok"))
        (log_dir / "audit.head").write_bytes(head)
        abandon(log)
    result = verify(log_dir, public_key)
    assert not result.ok and result.first_bad_seq == 12
    assert result.message.endswith("or the gateway stopped before signing the last one.")


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_edit_of_the_file_fails_cleanly(log_dir, public_key, data):
    original = (log_dir / "audit.log").read_bytes()
    at = data.draw(st.integers(0, len(original) - 1))
    how = data.draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
    byte = data.draw(st.binary(min_size=1, max_size=3))
    if how == "replace":
        changed = original[:at] + byte + original[at + len(byte) :]
    elif how == "insert":
        changed = original[:at] + byte + original[at:]
    elif how == "delete":
        changed = original[:at] + original[at + len(byte) :]
    else:
        changed = original[:at]
    if changed == original:
        return
    (log_dir / "audit.log").write_bytes(changed)
    try:
        result = verify(log_dir, public_key)  # never raises
        assert not result.ok, (how, at, byte)
        assert result.message.endswith(".") and "\n" not in result.message
    finally:
        (log_dir / "audit.log").write_bytes(original)
