"""Prove that an audit log was not edited: syntax, sequence, hash links, signatures, signed head.

Attacker-controlled here: every byte of the log and head files (this is what an officer runs on a
log that may have been tampered with). Limits: lines are read up to 64 KiB, one at a time; memory
does not grow with the log; any malformed input ends in a failed result, never an exception.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit import chain
from gateway.audit.chain import HEAD_FILE, LOG_FILE, Head, HeadError
from gateway.audit.events import (
    KIND_CHECKPOINT,
    KIND_CREATED,
    MAX_LINE,
    AuditRecord,
    RecordFormatError,
    parse_record,
    record_line,
)

_HEAD_SETTLE_SECONDS = 1.0  # a live gateway writes the head right after the record's fsync


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int  # records found intact (all of them when ok)
    first_bad_seq: int | None
    message: str  # one sentence naming the first problem, or saying the log is intact
    last_checkpoint: tuple[int, datetime] | None  # (seq, time) of the last valid checkpoint
    nodes: tuple[str, ...] = ()  # the gateway nodes that wrote records (a trail in PostgreSQL)


class Broken(Exception):
    def __init__(self, seq: int | None, message: str) -> None:
        super().__init__(message)
        self.seq = seq
        self.message = message


class ChainChecker:
    """Checks records one line at a time (no I/O here); raises Broken at the first problem."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self._public_key = public_key
        self.log_id: str | None = None
        self.last: AuditRecord | None = None
        self.count = 0
        self.last_checkpoint: tuple[int, datetime] | None = None

    @property
    def next_seq(self) -> int:
        return 0 if self.last is None else self.last.seq + 1

    def feed(self, data: bytes, *, complete: bool) -> AuditRecord:
        seq = self.next_seq
        if len(data) > MAX_LINE:
            raise Broken(
                seq, f"Record {seq} is longer than {MAX_LINE // 1024} KiB: the log was changed."
            )
        if not complete:
            raise Broken(
                seq, f"Record {seq} is incomplete: the log was cut off in the middle of a line."
            )
        try:
            record = parse_record(data)
        except RecordFormatError as exc:
            raise Broken(seq, f"Record {seq} was changed: {exc}.") from None
        self._check_place(record)
        if not chain.hash_matches(record):
            raise Broken(seq, f"Record {seq} was changed: its hash does not match its contents.")
        if record_line(record) != data:
            raise Broken(
                seq, f"Record {seq} was changed: it is not in the exact form the log writes."
            )
        self._check_link(record)
        if record.kind == KIND_CHECKPOINT:
            self._check_checkpoint(record)
        self.last = record
        self.count += 1
        return record

    def _check_place(self, record: AuditRecord) -> None:
        seq = self.next_seq
        if record.seq != seq and (
            record.prev_hash == self.last.hash if self.last else record.kind == KIND_CREATED
        ):
            raise Broken(seq, f"Record {seq} was changed: its sequence number says {record.seq}.")
        if record.seq > seq:
            raise Broken(
                seq, f"Record {seq} is missing: the next record in the file is {record.seq}."
            )
        if record.seq < seq:
            raise Broken(
                seq, f"Record {seq} is out of place: the file repeats record {record.seq} there."
            )

    def _check_link(self, record: AuditRecord) -> None:
        seq = record.seq
        if seq == 0:
            log_id = record.details.get("log_id")
            if record.kind != KIND_CREATED or not isinstance(log_id, str):
                raise Broken(
                    0,
                    "Record 0 is not the log's creation record: the start of the log was replaced.",
                )
            if record.prev_hash != chain.genesis_hash(log_id):
                raise Broken(
                    0, "Record 0 was changed: it does not chain from the log's genesis value."
                )
            self.log_id = log_id
            return
        assert self.last is not None
        if record.kind == KIND_CREATED:
            raise Broken(seq, f"Record {seq} claims to start a new log: records were spliced in.")
        if record.prev_hash != self.last.hash:
            raise Broken(
                seq,
                f"Record {seq} does not link to record {seq - 1}: one of them was "
                "replaced, or records were removed between them.",
            )

    def _check_checkpoint(self, record: AuditRecord) -> None:
        assert self.log_id is not None
        message = chain.checkpoint_message(self.log_id, record.seq, record.prev_hash)
        if not chain.signature_valid(self._public_key, message, record.details.get("signature")):
            raise Broken(
                record.seq,
                f"Record {record.seq} is a checkpoint whose signature does not "
                "verify: it was forged, or this is not the log's public key.",
            )
        self.last_checkpoint = (record.seq, record.when)

    def finish(self, head: Head, *, head_name: str = f"signed head file {HEAD_FILE}") -> None:
        """Compare the end of the log with its signed head (catches removal from the end)."""
        last = self.last
        if last is None:
            raise Broken(0, "The audit log is empty: even its creation record is missing.")
        if head.log_id != self.log_id or not head.valid(self._public_key):
            raise Broken(
                None,
                f"The {head_name} does not verify: it was forged, "
                "belongs to another log, or this is not the log's public key.",
            )
        if head.seq > last.seq:
            raise Broken(
                last.seq + 1,
                f"The log ends at record {last.seq} but its signed head says "
                f"{head.seq}: records were removed from the end.",
            )
        if head.seq < last.seq:
            crash = head.seq == last.seq - 1  # the window between a record's fsync and its head
            raise Broken(
                head.seq + 1,
                f"The log goes on past its signed head (record {head.seq}) to "
                f"record {last.seq}: records were added without the signing key"
                + (", or the gateway stopped before signing the last one." if crash else "."),
            )
        if head.hash != last.hash:
            raise Broken(
                last.seq,
                f"Record {last.seq} does not match the signed head: the end of the "
                "log was replaced.",
            )


def verify(directory: Path, public_key: ec.EllipticCurvePublicKey) -> VerifyResult:
    """Check the whole log in `directory`; safe to run while a gateway is appending to it."""
    chain.require_p256(public_key)
    checker = ChainChecker(public_key)
    try:
        _scan(Path(directory), checker)
    except Broken as broken:
        return VerifyResult(
            False, checker.count, broken.seq, broken.message, checker.last_checkpoint
        )
    except OSError as exc:
        return VerifyResult(
            False,
            checker.count,
            None,
            f"The audit log cannot be read: {exc.strerror or exc}.",
            None,
        )
    checkpoint = checker.last_checkpoint
    where = checkpoint_words(checkpoint)
    return VerifyResult(
        True, checker.count, None, f"All {checker.count} records are intact; {where}.", checkpoint
    )


def checkpoint_words(checkpoint: tuple[int, datetime] | None) -> str:
    if checkpoint is None:
        return "there is no checkpoint yet"
    return (f"the last signed checkpoint is record {checkpoint[0]} "
            f"({checkpoint[1]:%Y-%m-%d %H:%M:%S} UTC)")


def _scan(directory: Path, checker: ChainChecker) -> None:
    path = directory / LOG_FILE
    if not path.exists():
        raise Broken(None, f"There is no audit log ({LOG_FILE}) in {directory}.")
    with path.open("rb") as f:
        _feed_until_eof(f, checker)
        deadline = _time.monotonic() + _HEAD_SETTLE_SECONDS
        while True:
            head = _read_head(directory)
            last_seq = -1 if checker.last is None else checker.last.seq
            if head.seq > last_seq and _feed_until_eof(f, checker):
                continue  # the gateway appended while we read; the head covers the new records
            if head.seq == last_seq - 1 and _time.monotonic() < deadline:
                _time.sleep(0.02)  # the record is on disk, its head is being renamed into place
                continue
            checker.finish(head)
            return


def _feed_until_eof(f: object, checker: ChainChecker) -> bool:
    """Feed every further line; True when there was at least one."""
    fed = False
    while True:
        data = f.readline(MAX_LINE + 1)  # type: ignore[attr-defined]
        if not data:
            return fed
        checker.feed(data, complete=data.endswith(b"\n"))
        fed = True


def _read_head(directory: Path) -> Head:
    try:
        return chain.read_head(directory)
    except HeadError as exc:
        raise Broken(
            None, f"The log's {exc}: removal of records from its end cannot be ruled out."
        ) from None
