"""Reads a recording back: chunks in order, and seeking to a time through the key-frame index.

Attacker-controlled here: every byte of the recording and index files (they may be edited, cut
or crafted). Limits: each chunk's length is bounded by its type (≤ 16 MiB) and checked against the
file size before it is read; a key frame joined from continued chunks is at most MAX_KEY_FRAME;
the index is re-checked on use and rebuilt by a header-only scan if it does not fit the file.
The reader does not check hashes or signatures — verify_recording does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from gateway.recording import format as fmt
from gateway.recording.index import SeekPoint, point_at, read_index, write_index

MAX_KEY_FRAME: Final = 256 * 1024 * 1024
HELLO: Final = b"\x01"  # display message type: a frame starting with Hello is a whole frame


@dataclass(frozen=True, slots=True)
class Chunk:
    type: fmt.ChunkType
    continued: bool  # a later piece of the previous FRAME/KEYFRAME's data
    t_ms: int  # milliseconds since the start of the recording
    offset: int  # of the chunk header in the file
    payload: bytes

    @property
    def end(self) -> int:
        return self.offset + fmt.CHUNK_HEAD.size + len(self.payload)


@dataclass(frozen=True, slots=True)
class SeekResult:
    """Draw ``key_frame`` (display bytes of a whole frame at ``t_ms``), then ``frames`` in order."""

    t_ms: int
    key_frame: bytes
    frames: Iterator[Chunk]  # FRAME chunks after the key frame, lazily, to the end


def whole_frame(chunk: Chunk) -> bool:
    """A seek point: a key frame, or a live frame that starts with Hello (after a Resume)."""
    return not chunk.continued and (
        chunk.type is fmt.ChunkType.KEYFRAME
        or (chunk.type is fmt.ChunkType.FRAME and chunk.payload[:1] == HELLO)
    )


class RecordingReader:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self.size = os.fstat(fd).st_size
        prelude = self._pread(12, 0)
        self.header_bytes = prelude + self._pread(fmt.header_length(prelude) - len(prelude), 12)
        self.header = fmt.decode_header(self.header_bytes)
        self.header_hash = fmt.header_hash(self.header_bytes)
        self.data_start = len(self.header_bytes)
        self._points: list[SeekPoint] | None = None

    @classmethod
    def open(cls, path: Path) -> RecordingReader:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return cls(Path(path), fd)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- chunks ------------------------------------------------------------------------------

    def read_head(self, offset: int) -> tuple[fmt.ChunkType, bool, int, int] | None:
        """(type, continued, length, t_ms) of the chunk at offset; None at the end of the file.
        FormatError if it is malformed or the file ends inside it."""
        if offset == self.size:
            return None
        if not self.data_start <= offset < self.size:  # an index entry may point anywhere
            raise fmt.FormatError(f"byte {offset} is outside the recording's chunks")
        raw = self._pread(fmt.CHUNK_HEAD.size, offset)
        if len(raw) < fmt.CHUNK_HEAD.size:
            raise fmt.FormatError(f"the file ends inside a chunk header at byte {offset}")
        head = fmt.parse_chunk_head(raw)
        if offset + fmt.CHUNK_HEAD.size + head[2] > self.size:
            raise fmt.FormatError(f"the file ends inside a {head[0].name} chunk at byte {offset}")
        return head

    def read_chunk(self, offset: int) -> Chunk | None:
        head = self.read_head(offset)
        if head is None:
            return None
        ctype, cont, length, t_ms = head
        payload = self._pread(length, offset + fmt.CHUNK_HEAD.size)
        if len(payload) != length:  # the file shrank under us
            raise fmt.FormatError(f"the file ends inside a {ctype.name} chunk at byte {offset}")
        return Chunk(ctype, cont, t_ms, offset, payload)

    def chunks(self, offset: int | None = None, *, stop_at_cut: bool = False) -> Iterator[Chunk]:
        """Every chunk from offset (default: the first) to the end; a cut-off last chunk raises
        FormatError unless stop_at_cut (playing a recording that is still being written)."""
        pos = self.data_start if offset is None else offset
        while True:
            try:
                chunk = self.read_chunk(pos)
            except fmt.FormatError:
                if stop_at_cut:
                    return
                raise
            if chunk is None:
                return
            yield chunk
            pos = chunk.end

    # --- seeking -----------------------------------------------------------------------------

    def seek_points(self) -> list[SeekPoint]:
        if self._points is None:
            self._points = read_index(self.path, self.header_hash) or self.scan_seek_points()
        return self._points

    def scan_seek_points(self) -> list[SeekPoint]:
        """Rebuild the key-frame list from chunk headers (plus one byte per frame)."""
        points, pos = [], self.data_start
        while (head := self._safe_head(pos)) is not None:
            ctype, cont, length, t_ms = head
            hello = (
                ctype is fmt.ChunkType.FRAME
                and length > 0
                and (self._pread(1, pos + fmt.CHUNK_HEAD.size) == HELLO)
            )
            if not cont and (ctype is fmt.ChunkType.KEYFRAME or hello):
                points.append(SeekPoint(t_ms, pos))
            pos += fmt.CHUNK_HEAD.size + length
        return points

    def rebuild_index(self) -> list[SeekPoint]:
        """Scan and write the index file beside the recording."""
        self._points = self.scan_seek_points()
        write_index(self.path, self.header_hash, self._points)
        return self._points

    def seek(self, t_ms: int) -> SeekResult:
        """The last whole frame at or before t_ms (the first one if t_ms is earlier) and the
        frames after it; apply those with t_ms ≤ the target to show the screen at that time."""
        for attempt in range(2):
            point = point_at(self.seek_points(), t_ms)
            if point is None:
                raise fmt.FormatError("the recording has no key frame to start from")
            try:
                return self._seek_to(point)
            except fmt.FormatError:
                if attempt:
                    raise
                self._points = self.scan_seek_points()  # a stale or forged index: rescan
        raise AssertionError("unreachable")

    def _seek_to(self, point: SeekPoint) -> SeekResult:
        first = self.read_chunk(point.offset)
        if first is None or first.t_ms != point.t_ms or not whole_frame(first):
            raise fmt.FormatError("the index does not point at a key frame")
        parts, size, pos = [first.payload], len(first.payload), first.end
        for chunk in self.chunks(pos, stop_at_cut=True):
            if chunk.type is fmt.ChunkType.CHECKPOINT:
                pos = chunk.end
                continue
            if not (chunk.type is first.type and chunk.continued):
                break
            size += len(chunk.payload)
            if size > MAX_KEY_FRAME:
                raise fmt.FormatError("a key frame is larger than a recording may hold")
            parts.append(chunk.payload)
            pos = chunk.end
        return SeekResult(first.t_ms, b"".join(parts), self._frames_from(pos))

    def _frames_from(self, offset: int) -> Iterator[Chunk]:
        # Later key frames (and their continued pieces) are KEYFRAME chunks: skipped here.
        for chunk in self.chunks(offset, stop_at_cut=True):
            if chunk.type is fmt.ChunkType.FRAME:
                yield chunk
            elif chunk.type is fmt.ChunkType.SEAL:
                return

    def marks(self) -> list[tuple[int, str, str]]:
        """(t_ms, kind, text) of every MARK chunk."""
        return [(c.t_ms, *fmt.decode_mark(c.payload)) for c in self.chunks(stop_at_cut=True)
                if c.type is fmt.ChunkType.MARK]  # fmt: skip

    # --- I/O ---------------------------------------------------------------------------------

    def _safe_head(self, pos: int) -> tuple[fmt.ChunkType, bool, int, int] | None:
        try:
            return self.read_head(pos)
        except fmt.FormatError:
            return None  # a cut end: the points found so far are still good

    def _pread(self, n: int, offset: int) -> bytes:
        parts, got = [], 0
        while got < n:
            part = os.pread(self._fd, n - got, offset + got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)
