"""The append-only, hash-chained audit log: one JSON Lines file plus a signed head file.

Writing lives here (create, append, checkpoints, close); the checks made when an existing log is
reopened are in reopen.py, the disk-full reserve in reserve.py, the errors in errors.py.

Attacker-controlled here: event strings (bounded and cleaned by events.check_event) and, on
reopen, the tail of the existing file (read with a 64 KiB line limit; a corrupt tail is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit import chain, reopen, reserve
from gateway.audit.chain import HEAD_FILE, LOG_FILE
from gateway.audit.errors import AuditLogError, AuditWriteFailed
from gateway.audit.events import (
    KIND_CHECKPOINT,
    KIND_CREATED,
    KIND_RECOVERED,
    MAX_LINE,
    AuditEvent,
    AuditRecord,
    check_event,
    format_time,
    record_line,
    shrink_event,
)

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """Appends events durably: `append` returns only after the record is on disk (fsync)."""

    def __init__(
        self,
        directory: Path,
        signing_key: ec.EllipticCurvePrivateKey,
        *,
        checkpoint_every: int = 100,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """Open an existing log and continue its chain (use `create` for a new one)."""
        chain.require_p256(signing_key)
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.directory = Path(directory)
        self._key = signing_key
        self._key_id = chain.key_id(signing_key.public_key())
        self._every = checkpoint_every
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self.write_error: str | None = None  # the last append's failure, until one succeeds
        path = self.directory / LOG_FILE
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            raise AuditLogError(f"There is no audit log in {self.directory}.") from None
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AuditLogError(
                    f"The audit log in {self.directory} is open in another process."
                ) from None
            self._resume(path)
            self.keep_reserve()
        except BaseException:
            os.close(self._fd)
            raise

    @classmethod
    def create(
        cls,
        directory: Path,
        signing_key: ec.EllipticCurvePrivateKey,
        *,
        checkpoint_every: int = 100,
        clock: Callable[[], datetime] = _utcnow,
    ) -> AuditLog:
        """Start a new log: record 0 carries a random log id that the whole chain depends on."""
        chain.require_p256(signing_key)
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (directory / HEAD_FILE).exists() and not (directory / LOG_FILE).exists():
            # Deleting the whole log must not pass for a fresh start.
            raise AuditLogError(
                f"The audit log in {directory} is missing but its signed head is still there: "
                f"the log was deleted or moved. Move {HEAD_FILE} aside to start a new log."
            )
        log_id = secrets.token_hex(16)
        pub = signing_key.public_key()
        event = check_event(
            AuditEvent(
                KIND_CREATED,
                "ok",
                details={"log_id": log_id, "format": chain.FORMAT, "key_id": chain.key_id(pub)},
            ),
            internal=True,
        )
        time = format_time(clock())
        prev = chain.genesis_hash(log_id)
        record = AuditRecord(0, time, event, prev, chain.record_hash(0, time, event, prev))
        try:
            fd = os.open(
                directory / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600
            )
        except FileExistsError:
            raise AuditLogError(f"There is already an audit log in {directory}.") from None
        try:
            chain.write_all(fd, record_line(record))
            os.fsync(fd)
        finally:
            os.close(fd)
        chain.fsync_dir(directory)
        chain.write_head(directory, chain.make_head(signing_key, log_id, 0, record.hash, 0))
        return cls(directory, signing_key, checkpoint_every=checkpoint_every, clock=clock)

    @classmethod
    def open_or_create(
        cls, directory: Path, signing_key: ec.EllipticCurvePrivateKey, **kwargs: object
    ) -> AuditLog:
        if (Path(directory) / LOG_FILE).exists():
            return cls(directory, signing_key, **kwargs)  # type: ignore[arg-type]
        return cls.create(directory, signing_key, **kwargs)  # type: ignore[arg-type]

    @property
    def log_id(self) -> str:
        return self._log_id

    @property
    def last_seq(self) -> int:
        return self._seq

    # Told how long each durable append took (seconds): the gateway's metrics hook.
    on_write: Callable[[float], None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, event: AuditEvent, *, use_reserve: bool = False) -> AuditRecord:
        """Write the event and fsync; the action it describes may take effect only after this.

        All or nothing: when the record or the signed head cannot be written (disk full), the
        file is cut back to where it was and AuditWriteFailed says so in one sentence; the next
        append, once there is space, continues the same chain with nothing to repair.

        `use_reserve`: the action frees space (deleting a recording), so on a full disk the
        reserve file is given up to record it — retention still works when the disk is full."""
        clean = check_event(event)
        started = time.perf_counter()
        with self._lock:
            self._check_open()
            try:
                try:
                    record = self._append_whole(clean)
                except OSError as exc:
                    if not (use_reserve and exc.errno in reserve.FULL
                            and reserve.release(self.directory)):
                        raise
                    record = self._append_whole(clean)
            except OSError as exc:
                self.write_error = reserve.write_sentence(exc)
                log.error("audit: cannot write record %d: %s", self._seq + 1, exc)
                raise AuditWriteFailed(self.write_error) from None
            self.write_error = None
            if self._seq - self._checkpoint_seq >= self._every:
                try:
                    self._checkpoint()
                except OSError as exc:  # the record stands; the checkpoint comes with the next
                    log.error("audit: checkpoint after record %d failed: %s", record.seq, exc)
        if self.on_write is not None:
            self.on_write(time.perf_counter() - started)
        return record

    def _append_whole(self, event: AuditEvent) -> AuditRecord:
        size = os.lseek(self._fd, 0, os.SEEK_END)
        before = self._seq, self._hash
        record = self._write(event)
        try:
            self._write_head()
        except OSError:
            os.ftruncate(self._fd, size)  # the head never named it: nobody was told it is stored
            self._seq, self._hash = before
            with contextlib.suppress(OSError):
                self._write_head()  # in case the rename landed before the error
            raise
        return record

    async def aappend(self, event: AuditEvent, *, use_reserve: bool = False) -> AuditRecord:
        """`append` in the default executor, so fsync never blocks the event loop."""
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.append, event, use_reserve=use_reserve))

    def keep_reserve(self) -> bool:
        """Make the reserve file (reserve.RESERVE_BYTES of disk kept for recording deletions)
        if it is missing; False when there is no room for it yet."""
        return reserve.keep(self.directory)

    def checkpoint(self) -> AuditRecord:
        """Append a signed checkpoint now (also every `checkpoint_every` records and on close)."""
        with self._lock:
            self._check_open()
            return self._checkpoint()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                if self._checkpoint_seq != self._seq:
                    self._checkpoint()
            finally:
                self._closed = True
                os.close(self._fd)  # also releases the flock

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise AuditLogError("The audit log is closed.")

    def _checkpoint(self) -> AuditRecord:
        message = chain.checkpoint_message(self._log_id, self._seq + 1, self._hash)
        event = check_event(
            AuditEvent(
                KIND_CHECKPOINT,
                "ok",
                details={"key_id": self._key_id, "signature": chain.sign(self._key, message)},
            ),
            internal=True,
        )
        record = self._write(event)
        self._checkpoint_seq = record.seq
        self._write_head()
        return record

    def _write(self, event: AuditEvent) -> AuditRecord:
        seq = self._seq + 1
        time = format_time(self._clock())
        for fitted in (event, shrink_event(event), shrink_event(event, drop_details=True)):
            # Peer strings must never stop an event from being recorded: shorten, then drop.
            record = AuditRecord(
                seq, time, fitted, self._hash, chain.record_hash(seq, time, fitted, self._hash)
            )
            line = record_line(record)
            if len(line) <= MAX_LINE:
                break
        else:
            raise ValueError(f"audit record would be {len(line)} bytes, over the {MAX_LINE} limit")
        size = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            chain.write_all(self._fd, line)
            os.fsync(self._fd)
        except OSError:
            # Leave no half line behind (disk full): the next append must still continue the chain.
            os.ftruncate(self._fd, size)
            raise
        self._seq, self._hash = seq, record.hash
        return record

    def _write_head(self) -> None:
        head = chain.make_head(self._key, self._log_id, self._seq, self._hash, self._checkpoint_seq)
        chain.write_head(self.directory, head)

    def _resume(self, path: Path) -> None:
        ends = reopen.read_ends(self.directory, path)
        last, partial = ends.last, ends.partial
        self._log_id, self._seq, self._hash = ends.log_id, last.seq, last.hash
        if partial:
            self._drop_partial(path, partial, last)
        self._checkpoint_seq = self._check_head(last, ends.lines)
        if partial:
            event = AuditEvent(KIND_RECOVERED, "ok", details={
                "dropped_bytes": len(partial),
                "dropped_sha256": hashlib.sha256(partial).hexdigest()})
            self._write(check_event(event, internal=True))
            self._write_head()

    def _drop_partial(self, path: Path, partial: bytes, last: AuditRecord) -> None:
        """Cut off a record the process died while writing (reopen.check_partial says when)."""
        reopen.check_partial(self.directory, last)
        log.warning("audit: dropping %d bytes of a record cut off after record %d",
                    len(partial), last.seq)
        os.ftruncate(self._fd, path.stat().st_size - len(partial))
        os.fsync(self._fd)

    def _check_head(self, last: AuditRecord, lines: list[bytes]) -> int:
        """Check the signed head against the tail (reopen.check_head); one record past it is a
        crash, not an edit: it is accepted, and the log itself says so."""
        if reopen.head_missing(self.directory, last):
            self._checkpoint_seq = 0  # stopped between creating the log and signing its head
            self._write_head()
        checkpoint_seq, unsigned = reopen.check_head(
            self.directory, self._key.public_key(), self._log_id, last, lines)
        if unsigned:
            # The process stopped between fsync of the record and the head's rename. Accept the
            # record, and say so in the log itself so an officer can weigh it.
            log.warning("audit: record %d was written but the head was not; re-signing", last.seq)
            self._checkpoint_seq = checkpoint_seq
            self._write_head()
            event = AuditEvent(KIND_RECOVERED, "ok", details={"unsigned_seq": last.seq})
            self._write(check_event(event, internal=True))
            self._write_head()
        return checkpoint_seq


def create(directory: Path, signing_key: ec.EllipticCurvePrivateKey, **kwargs: object) -> AuditLog:
    """Start a new log in `directory` (refuses when one is already there)."""
    return AuditLog.create(directory, signing_key, **kwargs)  # type: ignore[arg-type]


__all__ = ["HEAD_FILE", "LOG_FILE", "AuditLog", "AuditLogError", "AuditWriteFailed", "create"]
