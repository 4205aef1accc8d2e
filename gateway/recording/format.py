"""The .srec recording format: header, chunk layout, hash chain and signed checkpoint payloads.

Attacker-controlled here: every byte of a recording or index file being read back (files can be
edited, truncated or crafted). Limits: the header is at most MAX_HEADER bytes with capped strings;
a chunk's length is checked against its type's bound (MAX_PAYLOAD for display bytes) before
anything is allocated; a checkpoint lists at most MAX_CHECKPOINT_SPAN chunk hashes.

See docs/RECORDINGS.md. All integers are unsigned big-endian. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

MAGIC: Final = b"SREC\r\n\x1a\n"  # the line-ending bytes catch text-mode transfers, as in PNG
VERSION: Final = 1
MAX_HEADER: Final = 1024
MAX_FIELD: Final = 128  # bytes of UTF-8 for recording id, session id, user, school
MAX_PAYLOAD: Final = 16 * 1024 * 1024  # display bytes per chunk; longer frames continue
MAX_MARK_KIND: Final = 32
MAX_MARK_TEXT: Final = 1024
MAX_CHECKPOINT_SPAN: Final = 4096  # chunks between two checkpoints
PREFIX: Final = 8  # bytes of each chunk hash listed in a checkpoint (to name a bad chunk)
SIG: Final = 64  # raw ECDSA P-256 r || s

CHUNK_HEAD = struct.Struct(">BIQ")  # | type u8 | length u32 | t_ms u64 |
_PRELUDE = struct.Struct(">8sHH")  # | magic | version u16 | body_len u16 |
_HEADER_TAIL = struct.Struct(">QHH8s")  # | started_ms u64 | width u16 | height u16 | key_id |
_CHECKPOINT_HEAD = struct.Struct(">32sI32sH")  # | header_hash | index u32 | head | count u16 |
_SEAL = struct.Struct(">32sI32sQ")  # | header_hash | count u32 | head | ended_ms u64 |
SEAL_CHUNK_SIZE: Final = CHUNK_HEAD.size + _SEAL.size + SIG
_SIGNED_LABEL: Final = b"staffroom-recording-v1 signature\0"
_GENESIS_LABEL: Final = b"staffroom-recording-v1 genesis\0"
_ECDSA = ec.ECDSA(hashes.SHA256())


class ChunkType(IntEnum):
    FRAME = 0x01  # display bytes exactly as sent to the viewer
    KEYFRAME = 0x02  # a full frame of the same instant as the FRAME before it: a seek point
    MARK = 0x03  # a session event: | kind_len u8 | kind ascii | text utf-8 (rest) |
    CHECKPOINT = 0x04  # signed chain head plus the hash prefixes of the chunks since the last
    SEAL = 0x05  # signed final head, chunk count and end time: the last chunk


CONTINUED: Final = 0x80  # type bit: this FRAME/KEYFRAME piece continues the previous chunk's data

MAX_LENGTH: Final[dict[ChunkType, int]] = {
    ChunkType.FRAME: MAX_PAYLOAD,
    ChunkType.KEYFRAME: MAX_PAYLOAD,
    ChunkType.MARK: 1 + MAX_MARK_KIND + MAX_MARK_TEXT,
    ChunkType.CHECKPOINT: _CHECKPOINT_HEAD.size + MAX_CHECKPOINT_SPAN * PREFIX + SIG,
    ChunkType.SEAL: _SEAL.size + SIG,
}


class FormatError(ValueError):
    """A recording or index file is not well formed (the message is one sentence)."""


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    recording_id: str
    session_id: str
    user: str
    school: str
    started_ms: int  # Unix time of the start, milliseconds
    width: int
    height: int
    key_id: bytes  # first 8 bytes of SHA-256 over the signing key's SubjectPublicKeyInfo


@dataclass(frozen=True, slots=True)
class Checkpoint:
    header_hash: bytes
    index: int  # this chunk's position = number of chunks before it
    head: bytes  # chain hash after the chunk before this one
    prefixes: tuple[bytes, ...]  # PREFIX bytes of each chain hash since the previous checkpoint
    signature: bytes


@dataclass(frozen=True, slots=True)
class Seal:
    header_hash: bytes
    count: int  # chunks before the seal
    head: bytes
    ended_ms: int  # Unix time of the end, milliseconds
    signature: bytes


def _field(value: str, what: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > MAX_FIELD:
        raise ValueError(f"{what} longer than {MAX_FIELD} bytes")
    return bytes([len(raw)]) + raw


def encode_header(h: RecordingHeader) -> bytes:
    body = b"".join(
        _field(v, n) for v, n in ((h.recording_id, "recording id"), (h.session_id, "session id"),
                                  (h.user, "user"), (h.school, "school"))
    ) + _HEADER_TAIL.pack(h.started_ms, h.width, h.height, h.key_id)  # fmt: skip
    return _PRELUDE.pack(MAGIC, VERSION, len(body)) + body


def header_length(prelude: bytes) -> int:
    """Total header size from its first 12 bytes; raises FormatError before anything else."""
    if len(prelude) < _PRELUDE.size:
        raise FormatError("the file is too short to be a Staffroom recording")
    magic, version, body_len = _PRELUDE.unpack_from(prelude)
    if magic != MAGIC:
        raise FormatError("the file is not a Staffroom recording")
    if version != VERSION:
        raise FormatError(f"the recording has format version {version}, not {VERSION}")
    if body_len > MAX_HEADER:
        raise FormatError("the recording header is implausibly long")
    return _PRELUDE.size + body_len


def decode_header(raw: bytes) -> RecordingHeader:
    end = header_length(raw)
    if len(raw) != end:
        raise FormatError("the recording header is cut off")
    off, fields = _PRELUDE.size, []
    try:
        for _ in range(4):
            n = raw[off]
            if n > MAX_FIELD or off + 1 + n > end:
                raise FormatError("a recording header field is too long")
            fields.append(raw[off + 1 : off + 1 + n].decode("utf-8"))
            off += 1 + n
        if off + _HEADER_TAIL.size != end:
            raise FormatError("the recording header has the wrong length")
        started, width, height, kid = _HEADER_TAIL.unpack_from(raw, off)
    except (IndexError, UnicodeDecodeError, struct.error):
        raise FormatError("the recording header is not well formed") from None
    return RecordingHeader(*fields, started, width, height, kid)


def header_hash(header_bytes: bytes) -> bytes:
    return hashlib.sha256(header_bytes).digest()


def genesis(header_bytes: bytes) -> bytes:
    """What chunk 0 chains from: binds every chunk to this header (ids, user, times)."""
    return hashlib.sha256(_GENESIS_LABEL + header_bytes).digest()


def chain(prev: bytes, chunk: bytes | memoryview) -> bytes:
    h = hashlib.sha256(prev)
    h.update(chunk)
    return h.digest()


def chunk_head(ctype: int, length: int, t_ms: int) -> bytes:
    return CHUNK_HEAD.pack(ctype, length, t_ms)


def parse_chunk_head(raw: bytes) -> tuple[ChunkType, bool, int, int]:
    """(type, continued, length, t_ms) from 13 bytes; bounds the length by the type."""
    code, length, t_ms = CHUNK_HEAD.unpack(raw)
    try:
        ctype = ChunkType(code & ~CONTINUED)
    except ValueError:
        raise FormatError(f"unknown chunk type 0x{code:02x}") from None
    if code & CONTINUED and ctype not in (ChunkType.FRAME, ChunkType.KEYFRAME):
        raise FormatError(f"a {ctype.name} chunk cannot be a continuation")
    if length > MAX_LENGTH[ctype]:
        raise FormatError(f"a {ctype.name} chunk of {length} bytes exceeds its limit")
    return ctype, bool(code & CONTINUED), length, t_ms


def encode_mark(kind: str, text: str) -> bytes:
    k, t = kind.encode("ascii"), text.encode("utf-8")
    if not 0 < len(k) <= MAX_MARK_KIND or len(t) > MAX_MARK_TEXT:
        raise ValueError("mark kind must be 1-32 ASCII bytes and text at most 1024 bytes")
    return bytes([len(k)]) + k + t


def decode_mark(payload: bytes) -> tuple[str, str]:
    try:
        n = payload[0]
        if n > MAX_MARK_KIND or 1 + n > len(payload):
            raise FormatError("a mark's kind is too long")
        return payload[1 : 1 + n].decode("ascii"), payload[1 + n :].decode("utf-8")
    except (IndexError, UnicodeDecodeError):
        raise FormatError("a mark is not well formed") from None


def signed_message(ctype: ChunkType, t_ms: int, body: bytes) -> bytes:
    """What a checkpoint or seal signs: label, type, time and the payload before the signature."""
    return _SIGNED_LABEL + bytes([ctype]) + t_ms.to_bytes(8, "big") + body


def sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(message, _ECDSA))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def signature_valid(key: ec.EllipticCurvePublicKey, message: bytes, sig: bytes) -> bool:
    if len(sig) != SIG:
        return False
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, message, _ECDSA)
    except InvalidSignature:
        return False
    return True


def key_id(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()[:8]


def checkpoint_body(hh: bytes, index: int, head: bytes, prefixes: list[bytes]) -> bytes:
    return _CHECKPOINT_HEAD.pack(hh, index, head, len(prefixes)) + b"".join(prefixes)


def decode_checkpoint(payload: bytes) -> tuple[Checkpoint, bytes]:
    """The checkpoint and the signed part of its payload."""
    try:
        hh, index, head, count = _CHECKPOINT_HEAD.unpack_from(payload)
    except struct.error:
        raise FormatError("a checkpoint is too short") from None
    body_len = _CHECKPOINT_HEAD.size + count * PREFIX
    if count > MAX_CHECKPOINT_SPAN or len(payload) != body_len + SIG:
        raise FormatError("a checkpoint has the wrong length")
    p0 = _CHECKPOINT_HEAD.size
    prefixes = tuple(payload[p0 + i * PREFIX : p0 + (i + 1) * PREFIX] for i in range(count))
    return Checkpoint(hh, index, head, prefixes, payload[body_len:]), payload[:body_len]


def seal_body(hh: bytes, count: int, head: bytes, ended_ms: int) -> bytes:
    return _SEAL.pack(hh, count, head, ended_ms)


def decode_seal(payload: bytes) -> tuple[Seal, bytes]:
    if len(payload) != _SEAL.size + SIG:
        raise FormatError("a seal has the wrong length")
    hh, count, head, ended = _SEAL.unpack_from(payload)
    return Seal(hh, count, head, ended, payload[_SEAL.size :]), payload[: _SEAL.size]
