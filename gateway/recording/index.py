"""The seek index beside a recording: where the key frames are, by time. Rebuildable by a scan.

Attacker-controlled here: the bytes of an index file read back. Limits: at most MAX_INDEX_BYTES
are read; entries must be sorted and bound to the recording's header hash, else the index is
ignored (callers rebuild it by scanning); each entry is re-checked when it is used.

Layout: | magic 8 "SRIX\\r\\n\\x1a\\n" | version u16 | header_hash 32 | count u32 |
count × | t_ms u64 | offset u64 |. Pure: encode/decode and atomic file replacement only.
"""

from __future__ import annotations

import bisect
import itertools
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

INDEX_MAGIC: Final = b"SRIX\r\n\x1a\n"
INDEX_VERSION: Final = 1
INDEX_SUFFIX: Final = ".idx"
MAX_INDEX_BYTES: Final = 64 * 1024 * 1024
_HEAD = struct.Struct(">8sH32sI")
_ENTRY = struct.Struct(">QQ")


@dataclass(frozen=True, slots=True)
class SeekPoint:
    """A chunk whose payload is a whole frame (a KEYFRAME, or a FRAME that starts with Hello)."""

    t_ms: int
    offset: int


def index_path(recording: Path) -> Path:
    return recording.with_name(recording.name + INDEX_SUFFIX)


def encode_index(header_hash: bytes, points: list[SeekPoint]) -> bytes:
    head = _HEAD.pack(INDEX_MAGIC, INDEX_VERSION, header_hash, len(points))
    return head + b"".join(_ENTRY.pack(p.t_ms, p.offset) for p in points)


def decode_index(raw: bytes, header_hash: bytes) -> list[SeekPoint] | None:
    """The seek points, or None when the index is foreign, stale or malformed."""
    if len(raw) < _HEAD.size:
        return None
    magic, version, hh, count = _HEAD.unpack_from(raw)
    if magic != INDEX_MAGIC or version != INDEX_VERSION or hh != header_hash:
        return None
    if len(raw) != _HEAD.size + count * _ENTRY.size:
        return None
    points = [SeekPoint(*e) for e in _ENTRY.iter_unpack(raw[_HEAD.size :])]
    ordered = all(a.t_ms <= b.t_ms and a.offset < b.offset for a, b in itertools.pairwise(points))
    return points if ordered else None


def read_index(recording: Path, header_hash: bytes) -> list[SeekPoint] | None:
    try:
        with index_path(recording).open("rb") as f:
            raw = f.read(MAX_INDEX_BYTES + 1)
    except OSError:
        return None
    return None if len(raw) > MAX_INDEX_BYTES else decode_index(raw, header_hash)


def write_index(recording: Path, header_hash: bytes, points: list[SeekPoint]) -> None:
    """Replace the index atomically (temp file, fsync, rename), mode 0600."""
    target = index_path(recording)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(encode_index(header_hash, points))
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def fsync_dir(directory: Path) -> None:
    """Make a new or renamed directory entry survive a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def point_at(points: list[SeekPoint], t_ms: int) -> SeekPoint | None:
    """The last seek point at or before t_ms; the first one if t_ms precedes them all."""
    if not points:
        return None
    i = bisect.bisect_right([p.t_ms for p in points], t_ms)
    return points[max(0, i - 1)]
