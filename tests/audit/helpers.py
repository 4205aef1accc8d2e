"""A tampering toolkit: what an attacker with write access to the audit directory can do."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit import chain
from gateway.audit.events import (
    KIND_CHECKPOINT,
    AuditEvent,
    AuditRecord,
    parse_record,
    record_line,
)
from gateway.audit.log import AuditLog


def fill(log: AuditLog, n: int, **fields: object) -> list[AuditRecord]:
    return [
        log.append(
            AuditEvent(
                kind="login",
                outcome="ok" if i % 3 else "denied",
                actor=f"teacher{i}",
                school="north",
                source="192.0.2.7",
                details={"method": "token", "attempt": i, "reasons": ["posture", "time"]},
                **fields,  # type: ignore[arg-type]
            )
        )
        for i in range(n)
    ]


def abandon(log: AuditLog) -> None:
    """Drop the log as a crashed process would: no closing checkpoint, the lock released."""
    log._closed = True
    os.close(log._fd)


def lines(directory: Path) -> list[bytes]:
    return (directory / chain.LOG_FILE).read_bytes().splitlines(keepends=True)


def write_lines(directory: Path, data: list[bytes]) -> None:
    (directory / chain.LOG_FILE).write_bytes(b"".join(data))


def rewrite_chain(
    directory: Path,
    edit: Callable[[list[AuditRecord]], list[AuditRecord]],
    signer: ec.EllipticCurvePrivateKey | None = None,
) -> None:
    """Edit records, then recompute every hash (and, given a key, every signature and the head)."""
    records = edit([parse_record(line) for line in lines(directory)])
    log_id = records[0].details["log_id"]
    prev = chain.genesis_hash(log_id)
    out = []
    for seq, record in enumerate(records):
        event = record.event
        if signer is not None and event.kind == KIND_CHECKPOINT:
            sig = chain.sign(signer, chain.checkpoint_message(log_id, seq, prev))
            event = replace(event, details={**event.details, "signature": sig})
        new = AuditRecord(
            seq, record.time, event, prev, chain.record_hash(seq, record.time, event, prev)
        )
        out.append(new)
        prev = new.hash
    write_lines(directory, [record_line(r) for r in out])
    if signer is not None:
        chain.write_head(directory, chain.make_head(signer, log_id, out[-1].seq, prev, 0))
