"""Reopening the file log: where its chain stands, checked against the file and the signed head.

A gateway continues the chain of the log it finds (log.AuditLog opens it). These checks come
first: the file starts with this log's creation record, its last complete record's hash holds,
and the signed head names that record — or, after a crash, the one before it (the record was
fsynced, the head's rename was not), or the complete record before a line cut mid-write. The
log itself then records what was recovered; anything else is refused with one sentence that
names `staffroom audit verify`.

Attacker-controlled here: the existing file's first line and tail and the head file (someone
with write access to DATA_DIR). Limits: lines are read with lines.py's MAX_LINE (64 KiB) bound
and only the first line and the last two are read; the head's signature is checked with the
gateway's own key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit import chain
from gateway.audit.chain import HEAD_FILE
from gateway.audit.errors import AuditLogError
from gateway.audit.events import (
    KIND_CHECKPOINT,
    KIND_CREATED,
    AuditRecord,
    RecordFormatError,
    parse_record,
)
from gateway.audit.lines import LineTooLong, read_first, read_tail


@dataclass(frozen=True, slots=True)
class Ends:
    """What the file holds at its ends: the log id (from the creation record), the last
    complete record, the last complete lines (at most two) and a record cut mid-line."""

    log_id: str
    last: AuditRecord
    lines: list[bytes]
    partial: bytes


def read_ends(directory: Path, path: Path) -> Ends:
    """The first record and the tail of the file, each checked (AuditLogError when not)."""
    first = read_first(path)
    try:
        if first is None or not first.complete:
            raise RecordFormatError("the creation record is missing or incomplete")
        created = parse_record(first.data)
        lines, partial = read_tail(path, 2)
        if not lines:
            raise RecordFormatError("it has no complete record")
        last = parse_record(lines[-1])
    except (RecordFormatError, LineTooLong) as exc:
        raise AuditLogError(
            f"The audit log in {directory} is damaged ({exc}); "
            "run `staffroom audit verify` and move it aside."
        ) from None
    log_id = created.details.get("log_id")
    if created.seq != 0 or created.kind != KIND_CREATED or not isinstance(log_id, str):
        raise AuditLogError(
            f"The audit log in {directory} does not start with its "
            "creation record; run `staffroom audit verify`."
        )
    if not chain.hash_matches(last):
        raise AuditLogError(
            f"The last record ({last.seq}) of the audit log in "
            f"{directory} was changed; run `staffroom audit verify`."
        )
    return Ends(log_id, last, lines, partial)


def check_partial(directory: Path, last: AuditRecord) -> None:
    """A line without its newline was never acknowledged (append returns after the whole
    line is fsynced and the head names it): the process died while writing it. It may be cut
    off only when the signed head names the complete record before it (AuditLogError if not)."""
    try:
        head = chain.read_head(directory)
    except chain.HeadError:
        head = None
    if head is None or head.seq != last.seq or head.hash != last.hash:
        raise AuditLogError(
            f"The audit log in {directory} ends in an incomplete record "
            f"after record {last.seq}; run `staffroom audit verify`."
        )


def check_head(directory: Path, public_key: ec.EllipticCurvePublicKey, log_id: str,
               last: AuditRecord, lines: list[bytes]) -> tuple[int, bool]:
    """Check the signed head against the tail; one record past it is a crash, not an edit.
    Returns the last checkpoint's seq and whether the last record is that unsigned one (the
    head must be signed again and the recovery recorded); AuditLogError for anything else."""
    try:
        head = chain.read_head(directory)
    except chain.HeadError as exc:
        raise AuditLogError(f"Cannot open the audit log in {directory}: {exc}.") from None
    if head.log_id != log_id or not head.valid(public_key):
        raise AuditLogError(
            f"The signed head of the audit log in {directory} does not "
            "verify with this key; run `staffroom audit verify`."
        )
    checkpoint_seq = last.seq if last.kind == KIND_CHECKPOINT else head.checkpoint_seq
    if head.seq == last.seq and head.hash == last.hash:
        return checkpoint_seq, False
    if (
        head.seq == last.seq - 1
        and len(lines) == 2
        and parse_record(lines[0]).hash == head.hash == last.prev_hash
    ):
        # The process stopped between fsync of the record and the head's rename.
        return checkpoint_seq, True
    raise AuditLogError(
        f"The audit log in {directory} ends at record {last.seq} but its "
        f"signed head says {head.seq}; run `staffroom audit verify`."
    )


def head_missing(directory: Path, last: AuditRecord) -> bool:
    """Stopped between creating the log and signing its head: the head is to be written."""
    return last.seq == 0 and not (directory / HEAD_FILE).exists()
