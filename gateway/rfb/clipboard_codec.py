"""The Extended Clipboard pseudo-encoding's messages (rfbproto, TigerVNC's clipboardTypes.h).

Attacker-controlled: the payload of every ServerCutText with a negative length. Limits: the
caller passes only payloads up to Limits.max_cut_text; Provide inflates at most 4 + ``limit``
bytes (``max_length``), so a zlib bomb costs nothing, and text declared longer is dropped.

Inside Server/ClientCutText the length is an s32; negative means an extended message of
``-length`` bytes, which starts with a flags word:

| type 3/6 u8 | pad 3 | -length s32 | flags u32 | body (length - 4) |
| flags = | actions u8 (bits 24-31) | reserved u8 | formats u16 (bits 0-15) |
| Caps    | flags (CAPS + actions accepted, formats) | max-unsolicited-size u32 × formats |
| Request | flags (REQUEST, formats wanted) |
| Peek    | flags (PEEK) |
| Notify  | flags (NOTIFY, formats now available; none = clipboard empty) |
| Provide | flags (PROVIDE, formats) | zlib((size u32 | data) × formats, in bit order) |

Text is UTF-8 with CRLF line ends and a NUL terminator that its size counts.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntFlag

from .encodings.numbers import Encoding
from .errors import LocalProtocolError, RemoteProtocolError

#: The pseudo-encoding number 0xC0A1E5CE as the s32 SetEncodings carries.
EXTENDED_CLIPBOARD = int(Encoding.EXTENDED_CLIPBOARD)


class Action(IntFlag):
    CAPS = 1 << 24
    REQUEST = 1 << 25
    PEEK = 1 << 26
    NOTIFY = 1 << 27
    PROVIDE = 1 << 28


class Format(IntFlag):
    TEXT = 1 << 0
    RTF = 1 << 1
    HTML = 1 << 2
    DIB = 1 << 3
    FILES = 1 << 4


ACTION_MASK = 0xFF000000
FORMAT_MASK = 0x0000FFFF
_U32 = struct.Struct(">I")


def _formats_in_order(formats: int) -> list[int]:
    return [1 << i for i in range(16) if formats & (1 << i)]


@dataclass(frozen=True, slots=True)
class Caps:
    """The actions the sender accepts; per format, the largest Provide it takes unasked
    (0 = send a Notify instead)."""

    actions: int
    sizes: tuple[tuple[int, int], ...]  # (format bit, size), in bit order

    @property
    def formats(self) -> int:
        return sum(fmt for fmt, _ in self.sizes)

    def size_for(self, fmt: int) -> int | None:
        return next((size for f, size in self.sizes if f == fmt), None)


@dataclass(frozen=True, slots=True)
class Request:
    formats: int


@dataclass(frozen=True, slots=True)
class Peek:
    pass


@dataclass(frozen=True, slots=True)
class Notify:
    formats: int


@dataclass(frozen=True, slots=True)
class Provide:
    """Only the text format is kept: ``text`` is its wire bytes (CRLF, NUL terminator),
    None when absent or when ``oversized`` (its declared ``text_size`` exceeded the limit)."""

    formats: int
    text: bytes | None = None
    text_size: int = 0
    oversized: bool = False


Message = Caps | Request | Peek | Notify | Provide


# -- encoding (our messages, and the server's in tests) ---------------------------------------
def encode(message: Message) -> bytes:
    """The payload (flags + body) of one extended message."""
    if isinstance(message, Caps):
        head = (message.actions & ACTION_MASK) | Action.CAPS | message.formats
        return _U32.pack(head) + b"".join(_U32.pack(size) for _, size in message.sizes)
    if isinstance(message, Request):
        return _U32.pack(Action.REQUEST | (message.formats & FORMAT_MASK))
    if isinstance(message, Peek):
        return _U32.pack(Action.PEEK)
    if isinstance(message, Notify):
        return _U32.pack(Action.NOTIFY | (message.formats & FORMAT_MASK))
    if message.text is None or message.formats != Format.TEXT:
        raise LocalProtocolError("only a Provide of text alone can be encoded")
    inner = _U32.pack(len(message.text)) + message.text
    return _U32.pack(Action.PROVIDE | Format.TEXT) + zlib.compress(inner)


def wrap(message_type: int, payload: bytes) -> bytes:
    """| type u8 | pad 3 | -len(payload) s32 | payload |"""
    if not 4 <= len(payload) < 2**31:
        raise LocalProtocolError(f"extended clipboard payload of {len(payload)} bytes")
    return struct.pack(">B3xi", message_type, -len(payload)) + payload


def text_to_wire(text: str) -> bytes:
    """UTF-8 with CRLF line ends and the NUL terminator the spec asks for."""
    lf = text.replace("\r\n", "\n").replace("\r", "\n")
    return lf.replace("\n", "\r\n").encode("utf-8", errors="replace") + b"\0"


def text_from_wire(data: bytes) -> tuple[bytes, str]:
    """(the bytes before the first NUL, as text with LF line ends). Invalid UTF-8 becomes
    U+FFFD: the peer's bytes are never trusted to be well-formed (rfbproto "String Encodings")."""
    raw = data.split(b"\0", 1)[0]
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return raw, text


# -- decoding -------------------------------------------------------------------------------
def decode(payload: bytes, limit: int) -> Message:
    """One extended message; text longer than ``limit`` bytes becomes an oversized Provide."""
    if len(payload) < 4:
        raise RemoteProtocolError(f"extended clipboard message of {len(payload)} bytes")
    (flags,) = _U32.unpack_from(payload)
    actions, formats = flags & ACTION_MASK, flags & FORMAT_MASK
    if actions & Action.CAPS:
        return _caps(payload, actions, formats)
    if actions == Action.REQUEST:
        return Request(formats)
    if actions == Action.PEEK:
        return Peek()
    if actions == Action.NOTIFY:
        return Notify(formats)
    if actions == Action.PROVIDE:
        return _provide(payload[4:], formats, limit)
    raise RemoteProtocolError(f"extended clipboard message with actions {actions >> 24:#04x}")


def _caps(payload: bytes, actions: int, formats: int) -> Caps:
    order = _formats_in_order(formats)
    if len(payload) < 4 + 4 * len(order):
        raise RemoteProtocolError("extended clipboard Caps shorter than its format sizes")
    sizes = struct.unpack_from(f">{len(order)}I", payload, 4)
    return Caps(actions, tuple(zip(order, sizes, strict=True)))


def _provide(body: bytes, formats: int, limit: int) -> Provide:
    if not formats & Format.TEXT:
        return Provide(formats)  # text comes first (bit 0); without it there is nothing we use
    stream = zlib.decompressobj()
    head = _inflate(stream, body, 4)
    (size,) = _U32.unpack(head)
    if size > limit:
        return Provide(formats, None, size, oversized=True)
    text = _inflate(stream, stream.unconsumed_tail, size) if size else b""
    return Provide(formats, text, size)


def _inflate(stream: zlib._Decompress, data: bytes, n: int) -> bytes:
    try:
        out = stream.decompress(data, n)
    except zlib.error:
        raise RemoteProtocolError("extended clipboard Provide: corrupt zlib data") from None
    if len(out) != n:
        raise RemoteProtocolError("extended clipboard Provide ends inside its data")
    return out
