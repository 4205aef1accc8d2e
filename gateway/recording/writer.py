"""Writes one session's recording: display bytes as sent, hash-chained, signed at checkpoints.

Attacker-controlled here: nothing parsed — display bytes come from our own pipeline, mark texts
may come from a peer and are length-capped. Limits: the buffer holds at most MAX_BUFFER bytes or
``checkpoint_every`` chunks or ``checkpoint_seconds`` before a signed checkpoint flushes and
fsyncs it; a write or fsync failure (disk full) becomes RecordingFailed, and the writer stops.

Call order on the session's frame path (the key frame belongs *after* the frame it mirrors)::

    if rec.needs_key_frame(now): pipeline.request_observer_key_frame()
    job = pipeline.take_frame(now); data = encode_frame(job)
    key = encode_frame(job.observer_key) if job.observer_key else None
    rec.write_frame(data, now, key_frame=key)      # or AsyncRecordingWriter: await ...
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.recording import format as fmt
from gateway.recording.index import SeekPoint, fsync_dir, write_index
from gateway.recording.reader import HELLO
from gateway.recording.store import new_recording_id, recording_path

log = logging.getLogger(__name__)

MAX_BUFFER: Final = 4 * 1024 * 1024

Clock = Callable[[], float]  # Unix seconds, as time.time


class RecordingFailed(Exception):
    """The recording cannot continue; str() is one sentence fit to show the teacher."""


class RecordingWriter:
    def __init__(
        self, path: Path, fd: int, header: fmt.RecordingHeader, started: float,
        signing_key: ec.EllipticCurvePrivateKey, *, key_frame_every: float,
        checkpoint_every: int, checkpoint_seconds: float,
    ) -> None:  # fmt: skip
        self.path = path
        self.header = header
        self._fd: int | None = fd
        self._key = signing_key
        self._started = started
        self._key_frame_every = key_frame_every
        self._cp_every = min(checkpoint_every, fmt.MAX_CHECKPOINT_SPAN)
        self._cp_seconds = checkpoint_seconds
        raw = fmt.encode_header(header)
        self._header_hash = fmt.header_hash(raw)
        self._head = fmt.genesis(raw)
        self._buf = bytearray(raw)
        self._offset = len(raw)  # file offset where the next chunk starts
        self._count = 0  # chunks so far
        self._pending: list[bytes] = []  # hash prefixes since (and with) the last checkpoint
        self._unsigned = 0  # chunks written since the last checkpoint
        self._last_cp = started
        self._last_t = 0
        self._last_seek: float | None = None
        self._changed_since_seek = False  # a frame was written after the last seek point
        self.seek_points: list[SeekPoint] = []
        self.failed = False
        self.closed = False

    @classmethod
    def create(
        cls, directory: Path, *, session_id: str, user: str, school: str, width: int,
        height: int, signing_key: ec.EllipticCurvePrivateKey, clock: Clock,
        key_frame_every: float = 30.0, checkpoint_every: int = 256,
        checkpoint_seconds: float = 10.0,
    ) -> RecordingWriter:  # fmt: skip
        """Start a recording under the recordings root ``directory`` (<yyyy>/<mm>/<id>.srec)."""
        started = clock()
        rid = new_recording_id(started)
        header = fmt.RecordingHeader(rid, session_id, user, school, int(started * 1000), width,
                                     height, fmt.key_id(signing_key))  # fmt: skip
        fmt.encode_header(header)  # field limits raise ValueError before a file exists
        path = recording_path(Path(directory), rid, started)
        try:
            for missing in reversed([d for d in path.parents if not d.exists()]):
                missing.mkdir(mode=0o700, exist_ok=True)  # every new level private, not umask's
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            fsync_dir(path.parent)
        except OSError as exc:
            raise _failure(exc, path) from exc
        writer = cls(
            path, fd, header, started, signing_key, key_frame_every=key_frame_every,
            checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds,
        )  # fmt: skip
        try:
            writer._flush(sync=False)  # the header is on disk at once, so the store lists it
        except RecordingFailed:
            path.unlink(missing_ok=True)  # a full disk leaves no empty, unreadable file behind
            raise
        log.info("recording %s started for session %s", rid, session_id)
        return writer

    # --- the frame path ----------------------------------------------------------------------

    def write_frame(self, data: bytes, now: float, *, key_frame: bytes | None = None) -> None:
        """Record one frame as sent (messages ending in Sync), then its key frame if given."""
        offset = self._append(fmt.ChunkType.FRAME, data, now)
        self._changed_since_seek = True
        if data[:1] == HELLO:  # a whole frame already: its key frame would be a duplicate
            self._seek_point(offset, now)
            key_frame = None
        if key_frame is not None:
            self.write_key_frame(key_frame, now)
        else:
            self._maybe_checkpoint(now)

    def write_key_frame(self, data: bytes, now: float) -> None:
        """A full frame equal to the screen after the last write_frame: a place to seek to."""
        self._seek_point(self._append(fmt.ChunkType.KEYFRAME, data, now), now)
        self._maybe_checkpoint(now)

    def needs_key_frame(self, now: float) -> bool:
        """Whether the next frame should be followed by a key frame: the first, and then every
        key_frame_every seconds while the screen changes. Not while nothing was sent since the
        last one: the last seek point still shows the screen, and a full-desktop key frame each
        interval was a third of what a quiet session cost the gateway (docs/PERFORMANCE.md,
        issue 11 part AQ). A seek then replays at most the one frame that ended the quiet."""
        return self._last_seek is None or (
            self._changed_since_seek and now - self._last_seek >= self._key_frame_every)

    def mark(self, kind: str, text: str, now: float) -> None:
        """A session event (kind e.g. "resume", "notice", "end"; text ≤ 1024 bytes, cut to fit)."""
        raw = text.encode("utf-8")[: fmt.MAX_MARK_TEXT].decode("utf-8", errors="ignore")
        self._append(fmt.ChunkType.MARK, fmt.encode_mark(kind, raw), now)
        self._maybe_checkpoint(now)

    def checkpoint_due(self, now: float, incoming: int = 0) -> bool:
        """Would the next write (of ``incoming`` bytes) flush and fsync? (AsyncRecordingWriter)"""
        chunks = self._unsigned + (1 + incoming // fmt.MAX_PAYLOAD if incoming else 0)
        return chunks > 0 and (
            len(self._pending) + (chunks - self._unsigned) >= self._cp_every
            or len(self._buf) + incoming >= MAX_BUFFER
            or now - self._last_cp >= self._cp_seconds
        )

    def handle_timer(self, now: float) -> None:
        """Checkpoint buffered chunks once checkpoint_seconds have passed (a quiet screen)."""
        if self._unsigned and now - self._last_cp >= self._cp_seconds:
            self._checkpoint(now)

    def next_timer(self) -> float | None:
        return self._last_cp + self._cp_seconds if self._unsigned else None

    def close(self, now: float) -> None:
        """Checkpoint, seal, fsync and close; then write the seek index. Idempotent."""
        if self.closed or self._fd is None:
            return
        try:
            self._check()
            if self._unsigned:
                self._checkpoint(now, flush=False)
            t_ms = self._t(now)
            body = fmt.seal_body(self._header_hash, self._count, self._head,
                                 self.header.started_ms + t_ms)  # fmt: skip
            sig = fmt.sign(self._key, fmt.signed_message(fmt.ChunkType.SEAL, t_ms, body))
            self._chunk(fmt.ChunkType.SEAL, body + sig, t_ms)
            self._flush(sync=True)
        finally:
            self._close_fd()
        self.closed = True
        try:
            write_index(self.path, self._header_hash, self.seek_points)
        except OSError as exc:  # the index is rebuilt by a scan when missing
            log.warning("recording %s: index not written: %s", self.header.recording_id, exc)
        log.info("recording %s sealed: %d chunks, %d bytes", self.header.recording_id,
                 self._count, self._offset)  # fmt: skip

    @property
    def bytes_written(self) -> int:
        return self._offset

    # --- internals ---------------------------------------------------------------------------

    def _t(self, now: float) -> int:
        # Never backwards: a stepped wall clock must not make the file look reordered.
        self._last_t = max(self._last_t, round((now - self._started) * 1000))
        return self._last_t

    def _append(self, ctype: fmt.ChunkType, data: bytes, now: float) -> int:
        self._check()
        t_ms, first = self._t(now), self._offset
        view = memoryview(data)
        for i in range(0, max(len(view), 1), fmt.MAX_PAYLOAD):
            self._chunk(ctype | (fmt.CONTINUED if i else 0), view[i : i + fmt.MAX_PAYLOAD], t_ms)
            if len(self._pending) >= self._cp_every:  # a checkpoint lists a bounded span
                self._checkpoint(now)
        return first

    def _chunk(self, code: int, payload: bytes | memoryview, t_ms: int) -> None:
        head = fmt.chunk_head(code, len(payload), t_ms)
        self._head = fmt.chain(self._head, head + payload)
        self._buf += head
        self._buf += payload
        self._offset += len(head) + len(payload)
        self._count += 1
        self._unsigned += 1
        self._pending.append(self._head[: fmt.PREFIX])

    def _seek_point(self, offset: int, now: float) -> None:
        self.seek_points.append(SeekPoint(self._last_t, offset))
        self._last_seek = now
        self._changed_since_seek = False

    def _maybe_checkpoint(self, now: float) -> None:
        if self.checkpoint_due(now):
            self._checkpoint(now)

    def _checkpoint(self, now: float, *, flush: bool = True) -> None:
        t_ms = self._t(now)
        body = fmt.checkpoint_body(self._header_hash, self._count, self._head, self._pending)
        sig = fmt.sign(self._key, fmt.signed_message(fmt.ChunkType.CHECKPOINT, t_ms, body))
        self._pending = []
        self._chunk(fmt.ChunkType.CHECKPOINT, body + sig, t_ms)
        self._pending = [self._head[: fmt.PREFIX]]  # the checkpoint itself, for the next one
        self._unsigned = 0
        self._last_cp = now
        if flush:
            self._flush(sync=True)

    def _flush(self, *, sync: bool) -> None:
        assert self._fd is not None
        try:
            view = memoryview(self._buf)
            while view:
                view = view[os.write(self._fd, view) :]
            if sync:
                os.fsync(self._fd)
        except OSError as exc:
            self.failed = True
            self._close_fd()
            raise _failure(exc, self.path) from exc
        finally:
            del view
        self._buf.clear()

    def _check(self) -> None:
        if self.failed:
            raise RecordingFailed("The session recording has already failed.")
        if self.closed:
            raise RuntimeError("the recording is closed")

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _failure(exc: OSError, path: Path) -> RecordingFailed:
    log.error("recording %s failed: %s", path.name, exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return RecordingFailed("The session recording stopped because the recording disk is full.")
    return RecordingFailed("The session recording stopped because it could not be saved.")


class AsyncRecordingWriter:
    """Loop-friendly wrapper: appends run inline (microseconds); a call that will flush and
    fsync runs in the default executor. One lock keeps the chunks in call order."""

    def __init__(self, writer: RecordingWriter) -> None:
        self.writer = writer
        self._lock = asyncio.Lock()

    def needs_key_frame(self, now: float) -> bool:
        return self.writer.needs_key_frame(now)

    async def write_frame(self, data: bytes, now: float, *, key_frame: bytes | None = None) -> None:
        n = len(data) + len(key_frame or b"")
        await self._run(n, now, lambda: self.writer.write_frame(data, now, key_frame=key_frame))

    async def write_key_frame(self, data: bytes, now: float) -> None:
        await self._run(len(data), now, lambda: self.writer.write_key_frame(data, now))

    async def mark(self, kind: str, text: str, now: float) -> None:
        await self._run(0, now, lambda: self.writer.mark(kind, text, now))

    async def handle_timer(self, now: float) -> None:
        await self._run(0, now, lambda: self.writer.handle_timer(now))

    def next_timer(self) -> float | None:
        return self.writer.next_timer()

    async def close(self, now: float) -> None:
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(None, self.writer.close, now)

    async def _run(self, incoming: int, now: float, call: Callable[[], None]) -> None:
        async with self._lock:
            if self.writer.checkpoint_due(now, incoming + 1):
                await asyncio.get_running_loop().run_in_executor(None, call)
            else:
                call()
