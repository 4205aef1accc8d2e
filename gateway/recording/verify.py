"""Checks a recording end to end: every chunk hash-chained, every checkpoint and the seal signed.

Attacker-controlled here: the whole file (an officer verifies what may have been tampered with).
Limits: chunks are read one at a time through the reader's bounds (≤ 16 MiB each); a checkpoint
lists at most 4096 hashes; every problem ends the walk with one sentence naming the first bad
chunk — verification never raises on bad input.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.recording import format as fmt
from gateway.recording.reader import Chunk, RecordingReader


@dataclass(frozen=True, slots=True)
class RecordingVerifyResult:
    ok: bool
    message: str  # one sentence
    chunks: int  # chunks that were checked before the verdict
    duration: float  # seconds, from the last chunk read


class _Bad(Exception):
    pass


@dataclass(slots=True)
class _Walk:
    hh: bytes  # header hash
    head: bytes  # chain hash after the last chunk
    key: ec.EllipticCurvePublicKey
    index: int = 0
    span_start: int = 0  # first chunk the next checkpoint lists
    pending: list[bytes] = field(default_factory=list)  # chain-hash prefixes of the span
    t_ms: int = 0
    sealed: bool = False

    def chunk(self, c: Chunk) -> None:
        where = f"chunk {self.index} ({c.type.name.lower()} at {_clock(c.t_ms)})"
        if self.sealed:
            raise _Bad(f"{where} follows the seal, so data was added after the recording ended.")
        # Times are not checked on their own: they are hashed, so the next checkpoint names a
        # changed or reordered chunk exactly, where a time check would blame its neighbour.
        if c.type is fmt.ChunkType.CHECKPOINT:
            self._checkpoint(c, where)
        elif c.type is fmt.ChunkType.SEAL:
            self._seal(c, where)
        self.head = fmt.chain(self.head, fmt.chunk_head(c.type | (fmt.CONTINUED if c.continued
                              else 0), len(c.payload), c.t_ms) + c.payload)  # fmt: skip
        if c.type is fmt.ChunkType.CHECKPOINT:
            self.pending, self.span_start = [], self.index  # the next span starts with it
        self.pending.append(self.head[: fmt.PREFIX])
        self.t_ms = max(self.t_ms, c.t_ms)
        self.index += 1

    def _signed(self, c: Chunk, where: str, body: bytes, sig: bytes, hh: bytes) -> None:
        if not fmt.signature_valid(self.key, fmt.signed_message(c.type, c.t_ms, body), sig):
            raise _Bad(f"{where} has a signature that does not match: it was forged or changed.")
        if not hmac.compare_digest(hh, self.hh):
            raise _Bad(f"the header (session, user, school or start time) was changed: "
                       f"{where} was signed for a different one.")  # fmt: skip

    def _checkpoint(self, c: Chunk, where: str) -> None:
        pending = self.pending
        cp, body = fmt.decode_checkpoint(c.payload)
        self._signed(c, where, body, cp.signature, cp.header_hash)
        for i, (got, signed) in enumerate(zip(pending, cp.prefixes, strict=False)):
            if not hmac.compare_digest(got, signed):
                raise _Bad(f"chunk {self.span_start + i} was changed, removed or reordered: "
                           f"it does not match the checkpoint signed at {where}.")  # fmt: skip
        if len(pending) != len(cp.prefixes) or cp.index != self.index:
            first = self.span_start + min(len(pending), len(cp.prefixes))
            raise _Bad(f"chunk {first} was removed or inserted: {where} signed "
                       f"{len(cp.prefixes)} chunks since the previous checkpoint.")  # fmt: skip
        if not hmac.compare_digest(cp.head, self.head):
            raise _Bad(f"the chain before {where} does not match its signed hash.")

    def _seal(self, c: Chunk, where: str) -> None:
        seal, body = fmt.decode_seal(c.payload)
        self._signed(c, where, body, seal.signature, seal.header_hash)
        if seal.count != self.index or not hmac.compare_digest(seal.head, self.head):
            raise _Bad(f"chunks {self.span_start}–{self.index - 1} do not match the signed seal "
                       f"at {where}, so chunks were changed, removed or added.")  # fmt: skip
        self.sealed = True


def _clock(t_ms: int) -> str:
    s = t_ms // 1000
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}.{t_ms % 1000:03d}"


def verify_recording(path: Path, public_key: ec.EllipticCurvePublicKey) -> RecordingVerifyResult:
    """Walk the whole file; ok only if every chunk is chained, signed over, and sealed."""
    try:
        reader = RecordingReader.open(Path(path))
    except (OSError, fmt.FormatError) as exc:
        return RecordingVerifyResult(False, f"The recording cannot be read: {_sentence(exc)}", 0, 0)
    with reader:
        if not hmac.compare_digest(reader.header.key_id, fmt.key_id(public_key)):
            return RecordingVerifyResult(False, "The recording was signed with a different key "
                                         f"(id {reader.header.key_id.hex()}).", 0, 0.0)  # fmt: skip
        walk = _Walk(reader.header_hash, fmt.genesis(reader.header_bytes), public_key)
        try:
            _walk(reader, walk)
        except _Bad as bad:
            return _result(False, str(bad), walk)
        except OSError as exc:
            return _result(False, f"Reading chunk {walk.index} failed: {_sentence(exc)}", walk)
    return _result(True, f"The recording is intact and sealed: {walk.index} chunks, "
                   f"{_clock(walk.t_ms)} long.", walk)  # fmt: skip


def _walk(reader: RecordingReader, walk: _Walk) -> None:
    pos = reader.data_start
    while True:
        try:
            chunk = reader.read_chunk(pos)
        except fmt.FormatError as exc:
            # A bad header may also mean the length of the chunk before it was changed.
            before = f", or the length of chunk {walk.index - 1} was changed" if walk.index else ""
            raise _Bad(f"chunk {walk.index} at byte {pos} is damaged or cut off "
                       f"({_plain(exc)}){before}.") from None  # fmt: skip
        if chunk is None:
            break
        try:
            walk.chunk(chunk)
        except fmt.FormatError as exc:
            raise _Bad(f"chunk {walk.index} at byte {pos} is malformed ({_plain(exc)}).") from None
        pos = chunk.end
    if not walk.sealed:
        raise _Bad(f"the recording ends after chunk {walk.index - 1} without a seal: it was cut "
                   f"off, or is still being written.")  # fmt: skip


def _result(ok: bool, message: str, walk: _Walk) -> RecordingVerifyResult:
    return RecordingVerifyResult(ok, message[0].upper() + message[1:], walk.index,
                                 walk.t_ms / 1000)  # fmt: skip


def _plain(exc: Exception) -> str:
    return str(exc).rstrip(".")


def _sentence(exc: Exception) -> str:
    text = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
    return text.rstrip(".") + "."
