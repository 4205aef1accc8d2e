"""Checks a recording end to end: every chunk hash-chained, every checkpoint and the seal signed.

Attacker-controlled here: the whole file (an officer verifies what may have been tampered with).
Limits: chunks are read one at a time through the reader's bounds (≤ 16 MiB each); a checkpoint
lists at most 4096 hashes; every problem ends the walk with one sentence naming the first bad
chunk — verification never raises on bad input.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
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
    # Not sealed, or ends inside a chunk, but intact up to its last checkpoint: the gateway
    # stopped (crash, SIGKILL, power) while writing. Not forged; the unsigned tail is named.
    cut_short: bool = False


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
    signed: int = 0  # chunks covered by the last checkpoint (0: none yet)
    signed_t_ms: int = 0

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
            self.signed, self.signed_t_ms = self.index + 1, c.t_ms
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


class _Cut(Exception):
    pass


def verify_recording(
    path: Path, public_key: ec.EllipticCurvePublicKey | Sequence[ec.EllipticCurvePublicKey],
) -> RecordingVerifyResult:  # fmt: skip
    """Walk the whole file; ok only if every chunk is chained, signed over, and sealed. Given
    several keys (a gateway's recordings key and, for older recordings, its audit key), the one
    the header names is used."""
    keys = [public_key] if isinstance(public_key, ec.EllipticCurvePublicKey) else public_key
    try:
        reader = RecordingReader.open(Path(path))
    except (OSError, fmt.FormatError) as exc:
        return RecordingVerifyResult(False, f"The recording cannot be read: {_sentence(exc)}", 0, 0)
    with reader:
        key = next((k for k in keys
                    if hmac.compare_digest(reader.header.key_id, fmt.key_id(k))), None)
        if key is None:
            return RecordingVerifyResult(False, "The recording was signed with a different key "
                                         f"(id {reader.header.key_id.hex()}).", 0, 0.0)  # fmt: skip
        walk = _Walk(reader.header_hash, fmt.genesis(reader.header_bytes), key)
        try:
            _walk(reader, walk)
        except _Cut as cut:
            return _cut_short(walk, str(cut))
        except _Bad as bad:
            return _result(False, str(bad), walk)
        except OSError as exc:
            return _result(False, f"Reading chunk {walk.index} failed: {_sentence(exc)}", walk)
    return _result(True, f"The recording is intact and sealed: {walk.index} chunks, "
                   f"{_clock(walk.t_ms)} long.", walk)  # fmt: skip


def _cut_short(walk: _Walk, where: str) -> RecordingVerifyResult:
    why = f"The recording was cut short {where} (the gateway stopped writing it: a crash or a " \
        "full disk)"
    if walk.signed:
        text = (f"{why}: chunks 0–{walk.signed - 1}, up to its last checkpoint at "
                f"{_clock(walk.signed_t_ms)}, are intact and signed; the "
                f"{walk.index - walk.signed} chunks after it are chained but unsigned.")
    else:
        text = f"{why} before its first checkpoint, so none of its {walk.index} chunks is signed."
    return RecordingVerifyResult(False, text, walk.index, walk.t_ms / 1000, cut_short=True)


def _ends_inside(reader: RecordingReader, pos: int) -> bool:
    """Does the file end inside a well-formed chunk header or its payload (a crash mid-write)?"""
    if pos + fmt.CHUNK_HEAD.size > reader.size:
        return True
    try:
        _, _, length, _ = fmt.parse_chunk_head(reader._pread(fmt.CHUNK_HEAD.size, pos))
    except fmt.FormatError:
        return False
    return pos + fmt.CHUNK_HEAD.size + length > reader.size


def _walk(reader: RecordingReader, walk: _Walk) -> None:
    pos = reader.data_start
    while True:
        try:
            chunk = reader.read_chunk(pos)
        except fmt.FormatError as exc:
            if _ends_inside(reader, pos):
                raise _Cut(f"inside chunk {walk.index} at byte {pos}") from None
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
        raise _Cut(f"after chunk {walk.index - 1}, without a seal" if walk.index
                   else "right after its header")


def _result(ok: bool, message: str, walk: _Walk) -> RecordingVerifyResult:
    return RecordingVerifyResult(ok, message[0].upper() + message[1:], walk.index,
                                 walk.t_ms / 1000)  # fmt: skip


def _plain(exc: Exception) -> str:
    return str(exc).rstrip(".")


def _sentence(exc: Exception) -> str:
    text = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
    return text.rstrip(".") + "."
