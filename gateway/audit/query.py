"""Reading the audit log for officers and SIEMs: tail, filters, JSON Lines and CSV export.

Attacker-controlled here: the strings inside records (user names, addresses typed by a peer),
which end up in a spreadsheet or SIEM. Limits: lines are read one at a time up to 64 KiB, so memory
stays flat; CSV cells that a spreadsheet would run as a formula are prefixed with "'".
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from gateway.audit.chain import LOG_FILE
from gateway.audit.events import (
    RECORD_FIELDS,
    AuditRecord,
    RecordFormatError,
    canonical_json,
    format_time,
    parse_record,
    record_line,
)
from gateway.audit.lines import iter_lines, read_tail

CSV_COLUMNS = RECORD_FIELDS
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP "CSV injection"


def tail(directory: Path, n: int) -> list[AuditRecord]:
    """The last `n` records, oldest first (an incomplete line being written is left out)."""
    lines, _partial = read_tail(Path(directory) / LOG_FILE, n)
    return [_parse(line, None) for line in lines]


def iter_records(
    directory: Path,
    *,
    user: str | None = None,
    school: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[AuditRecord]:
    """Records in order that match every filter given.

    `user` matches actor or subject; `kind` matches exactly or as a dotted prefix ("session"
    matches "session.start"); `since` is inclusive and `until` exclusive (timezone-aware).
    Raises RecordFormatError at a damaged line: run verify to find out what happened.
    """
    # Stored times are fixed-width UTC strings, so comparing strings compares instants.
    low = format_time(since) if since is not None else None
    high = format_time(until) if until is not None else None
    prefix = kind + "." if kind is not None else None
    for line in iter_lines(Path(directory) / LOG_FILE):
        if not line.complete:
            if line.too_long:
                raise RecordFormatError(f"line {line.number} of {LOG_FILE} is too long")
            return  # being written right now, or cut off: verify reports the latter
        record = _parse(line.data, line.number)
        if low is not None and record.time < low:
            continue
        if high is not None and record.time >= high:
            continue
        if user is not None and user not in (record.actor, record.subject):
            continue
        if school is not None and record.school != school:
            continue
        if kind is not None and record.kind != kind and not record.kind.startswith(prefix or ""):
            continue
        yield record


def export_jsonl(records: Iterable[AuditRecord], out: BinaryIO) -> int:
    """Write records exactly as stored (a SIEM can recompute every hash); returns the count."""
    count = 0
    for record in records:
        out.write(record_line(record))
        count += 1
    return count


def export_csv(records: Iterable[AuditRecord], out: TextIO) -> int:
    """Write RFC 4180 CSV with a header row; details as canonical JSON; returns the record count.

    Open `out` with newline="" so embedded newlines survive as part of a quoted cell.
    """
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        writer.writerow(
            [
                record.seq,
                record.time,
                _cell(record.kind),
                _cell(record.outcome),
                _cell(record.actor),
                _cell(record.subject),
                _cell(record.school),
                _cell(record.session),
                _cell(record.source),
                _cell(canonical_json(dict(record.details)).decode("utf-8")),
                record.prev_hash,
                record.hash,
            ]
        )
        count += 1
    return count


def _cell(value: str | None) -> str:
    if value is None:
        return ""
    if value.startswith(_FORMULA_STARTS):
        return "'" + value  # shown as text by spreadsheets; the JSONL export keeps the original
    return value


def _parse(data: bytes, number: int | None) -> AuditRecord:
    try:
        return parse_record(data)
    except RecordFormatError as exc:
        where = f"line {number}" if number is not None else "a line near the end"
        raise RecordFormatError(f"{where} of {LOG_FILE} is damaged: {exc}") from None
