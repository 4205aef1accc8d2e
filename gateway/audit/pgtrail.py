"""One audit trail for every gateway node, in PostgreSQL: the same records and hash chain as the
file log, each naming the node that wrote it, serialised by a row lock on the signed head.

Attacker-controlled here: event strings (bounded and cleaned by events.check_event) and, on open,
the head row (its signature is checked with this node's key). Limits: a line is at most 64 KiB
(strings are shortened, then details dropped, as in the file log); at most MAX_IDLE connections
are kept; every wait on the server is bounded (pgschema's timeouts), after which the append fails
with AuditWriteFailed and the action it describes does not happen.

An append is one transaction: lock the head row (`SELECT ... FOR UPDATE`: every node waits its
turn, so there is one chain without forks), insert the record (and a signed checkpoint when one is
due), update the signed head, COMMIT. `append` returns only after the COMMIT, so a record is
durable before its action takes effect, whichever node writes it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg.pq import TransactionStatus

from gateway.audit import chain, pgschema
from gateway.audit.errors import AuditLogError, AuditWriteFailed
from gateway.audit.events import (
    KIND_CHECKPOINT,
    MAX_LINE,
    AuditEvent,
    AuditRecord,
    check_event,
    format_time,
    record_line,
    shrink_event,
)

log = logging.getLogger(__name__)
_DB_ERRORS = (psycopg.Error,)

MAX_IDLE = 4  # connections kept open between appends
NODE_KEY = "node"  # the detail naming the node that wrote a record (covered by its hash)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def unreachable_sentence(exc: BaseException) -> str:
    # psycopg's messages can carry the DSN's host and port but never its password.
    reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return f"The audit trail in PostgreSQL cannot be written ({reason})."


class PgTrail:
    """The gateway's audit log when gateway.json names a PostgreSQL database."""

    def __init__(self, dsn: str, signing_key: ec.EllipticCurvePrivateKey, node: str, *,
                 checkpoint_every: int = 100,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        """Open the trail that `pgschema.create_trail` made (AuditLogError, one sentence, when
        the server cannot be reached, holds no trail, or its head does not verify)."""
        chain.require_p256(signing_key)
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if not node or len(node) > 64:
            raise ValueError("the node name must be 1 to 64 characters")
        self._dsn, self._key, self.node = dsn, signing_key, node
        self._key_id = chain.key_id(signing_key.public_key())
        self._every, self._clock = checkpoint_every, clock
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        self._seq = -1
        self.write_error: str | None = None  # the last append's failure, until one succeeds
        try:
            conn = self._take()
            try:
                pgschema.migrate(conn)
                head = pgschema.read_head(conn)
            finally:
                self._give(conn)
        except _DB_ERRORS as exc:
            raise AuditLogError(unreachable_sentence(exc)) from None
        if head is None:
            raise AuditLogError("The PostgreSQL database holds no audit trail yet: create it "
                                "with `staffroom init --db ...` on the first node.")
        if not head.valid(signing_key.public_key()):
            raise AuditLogError("The signed head of the audit trail in PostgreSQL does not "
                                "verify with this node's audit key; run `staffroom audit verify`.")
        self._log_id, self._seq = head.log_id, head.seq

    # Told how long each durable append took (seconds): the gateway's metrics hook.
    on_write: Callable[[float], None] | None = None

    @property
    def log_id(self) -> str:
        return self._log_id

    @property
    def last_seq(self) -> int:
        """The last record this node saw (others may have appended since)."""
        return self._seq

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, event: AuditEvent, *, use_reserve: bool = False) -> AuditRecord:
        """Store the event for the whole board; the action may take effect only after this.
        `use_reserve` exists for the file log's full disk; the database has no such reserve."""
        del use_reserve
        clean = check_event(event)
        started = time.perf_counter()
        self._check_open()
        record = self._transact(lambda conn, head: self._append_in(conn, head, clean))
        if self.on_write is not None:
            self.on_write(time.perf_counter() - started)
        return record

    async def aappend(self, event: AuditEvent, *, use_reserve: bool = False) -> AuditRecord:
        """`append` in the default executor, so the round trip never blocks the event loop."""
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.append, event, use_reserve=use_reserve))

    def checkpoint(self) -> AuditRecord:
        """Append a signed checkpoint now (also every `checkpoint_every` records)."""
        self._check_open()
        return self._transact(self._checkpoint_in)

    def keep_reserve(self) -> bool:
        """The file log keeps disk space for deletions; the database needs none."""
        return True

    def close(self) -> None:
        """Sign a checkpoint when records followed the last one, then drop the connections."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._transact(self._close_in)
        except AuditWriteFailed as exc:
            log.warning("audit: no closing checkpoint: %s", exc)
        finally:
            with self._lock:
                idle, self._idle = self._idle, []
            for conn in idle:
                conn.close()

    def __enter__(self) -> PgTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def records(self, **filters: Any) -> Iterator[AuditRecord]:
        """The records matching the query filters, in order, from one snapshot (see pgread)."""
        from gateway.audit import pgread

        try:
            conn = self._take()
            try:
                yield from pgread.iter_records(conn, **filters)
            finally:
                self._give(conn)
        except _DB_ERRORS as exc:
            # The API answers it as it answers a failed write: 503 and one sentence.
            reason = unreachable_sentence(exc).removeprefix(
                "The audit trail in PostgreSQL cannot be written ")
            raise AuditWriteFailed(f"The audit trail in PostgreSQL cannot be read {reason}") \
                from None

    # -- inside the transaction that holds the head lock --------------------------------------

    def _append_in(self, conn: Any, head: chain.Head, event: AuditEvent) -> AuditRecord:
        record = self._insert(conn, head.seq + 1, head.hash, event)
        checkpoint_seq = head.checkpoint_seq
        if record.seq - checkpoint_seq >= self._every:
            checkpoint = self._insert(conn, record.seq + 1, record.hash, self._checkpoint_event(
                head.log_id, record.seq + 1, record.hash))
            self._sign_head(conn, head.log_id, checkpoint, checkpoint.seq)
        else:
            self._sign_head(conn, head.log_id, record, checkpoint_seq)
        return record

    def _checkpoint_in(self, conn: Any, head: chain.Head) -> AuditRecord:
        record = self._insert(conn, head.seq + 1, head.hash,
                              self._checkpoint_event(head.log_id, head.seq + 1, head.hash))
        self._sign_head(conn, head.log_id, record, record.seq)
        return record

    def _close_in(self, conn: Any, head: chain.Head) -> AuditRecord | None:
        if head.checkpoint_seq == head.seq:
            return None
        return self._checkpoint_in(conn, head)

    def _checkpoint_event(self, log_id: str, seq: int, prev_hash: str) -> AuditEvent:
        message = chain.checkpoint_message(log_id, seq, prev_hash)
        return AuditEvent(KIND_CHECKPOINT, "ok", details={
            "key_id": self._key_id, "signature": chain.sign(self._key, message)})

    def _insert(self, conn: Any, seq: int, prev_hash: str, event: AuditEvent) -> AuditRecord:
        stamp = format_time(self._clock())
        for fitted in _fitting(event):
            # Peer strings must never stop an event from being recorded: shorten, then drop.
            named = check_event(AuditEvent(
                fitted.kind, fitted.outcome, fitted.actor, fitted.subject, fitted.school,
                fitted.session, fitted.source, {**fitted.details, NODE_KEY: self.node}),
                internal=True)
            record = AuditRecord(seq, stamp, named, prev_hash,
                                 chain.record_hash(seq, stamp, named, prev_hash))
            if len(record_line(record)) <= MAX_LINE:
                break
        else:
            raise ValueError(f"audit record {seq} would be over the {MAX_LINE}-byte limit")
        pgschema.insert_record(conn, record, self.node)
        return record

    def _sign_head(self, conn: Any, log_id: str, last: AuditRecord, checkpoint_seq: int) -> None:
        pgschema.write_head(conn, chain.make_head(self._key, log_id, last.seq, last.hash,
                                                  checkpoint_seq))

    # -- connections and the transaction ---------------------------------------------------

    def _transact(self, body: Callable[[Any, chain.Head], Any]) -> Any:
        """Run `body` under the head lock and COMMIT; AuditWriteFailed when that fails. A
        connection found dead before anything was sent is replaced once (a server restart)."""
        for attempt in (1, 2):
            try:
                conn = self._take(fresh=attempt == 2)
            except _DB_ERRORS as exc:
                raise self._failed(exc) from None
            locked = False
            try:
                with conn.transaction():
                    head = pgschema.read_head(conn, lock=True)
                    locked = True
                    if head is None:
                        raise AuditLogError("the audit trail's head row is missing")
                    result = body(conn, head)
            except _DB_ERRORS as exc:
                dead = conn.broken
                conn.close()
                if dead and not locked and attempt == 1:
                    continue  # the idle connection had died: nothing was written, try anew
                raise self._failed(exc) from None
            except AuditLogError as exc:
                self._give(conn)
                raise self._failed(exc) from None
            except BaseException:
                self._give(conn)  # rolled back (a record over the size limit): reusable
                raise
            self._give(conn)
            self.write_error = None
            if isinstance(result, AuditRecord):
                self._seq = max(self._seq, result.seq)
            return result
        raise AssertionError("unreachable")

    def _failed(self, exc: BaseException) -> AuditWriteFailed:
        self.write_error = unreachable_sentence(exc)
        log.error("audit: cannot append to the trail in PostgreSQL: %s", exc)
        return AuditWriteFailed(self.write_error)

    def _take(self, *, fresh: bool = False) -> Any:
        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
        return pgschema.connect(self._dsn)

    def _give(self, conn: Any) -> None:
        if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
            conn.close()
            return
        with self._lock:
            if not self._closed and len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _check_open(self) -> None:
        if self._closed:
            raise AuditLogError("The audit log is closed.")


def _fitting(event: AuditEvent) -> Iterator[AuditEvent]:
    """The event, then shorter forms of it (made only when the full one is too long)."""
    yield event
    yield shrink_event(event)
    yield shrink_event(event, drop_details=True)
