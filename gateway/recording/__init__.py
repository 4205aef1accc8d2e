"""Session recordings: the display stream as sent, hash-chained and signed (docs/RECORDINGS.md)."""

from __future__ import annotations

from gateway.recording.format import ChunkType, FormatError, RecordingHeader
from gateway.recording.reader import Chunk, RecordingReader, SeekResult
from gateway.recording.store import (
    RecordingInfo,
    delete,
    expired,
    find_recording,
    list_recordings,
    recordings_root,
)
from gateway.recording.verify import RecordingVerifyResult, verify_recording
from gateway.recording.writer import AsyncRecordingWriter, RecordingFailed, RecordingWriter

__all__ = [
    "AsyncRecordingWriter",
    "Chunk",
    "ChunkType",
    "FormatError",
    "RecordingFailed",
    "RecordingHeader",
    "RecordingInfo",
    "RecordingReader",
    "RecordingVerifyResult",
    "RecordingWriter",
    "SeekResult",
    "delete",
    "expired",
    "find_recording",
    "list_recordings",
    "recordings_root",
    "verify_recording",
]
