"""Display protocol codec: bytes <-> gateway.wire.display.messages.

Attacker-controlled: every byte fed to DisplayDecoder.feed (the viewer/agent side is untrusted;
the viewer also treats the gateway stream as hostile). Limits: each type has a maximum payload
length checked from the 5-byte header before anything is buffered for it; texts are strict UTF-8
with byte caps (clipboard text MAX_CLIPBOARD; the policy's smaller cap is the session's job);
dimensions are capped at MAX_DIMENSION; the decoder buffers at most one message.

Pure standard library, no I/O: ``feed(data)`` (``b""`` = end of stream), ``next_event()`` ->
message, ``NEED_DATA`` or ``CLOSED``; ``encode(message) -> bytes``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gateway.wire.display import palette
from gateway.wire.display.messages import (
    CLOSED,
    HEADER,
    MAX_CLIPBOARD,
    MAX_CURSOR_DATA,
    MAX_CURSOR_SIDE,
    MAX_DIMENSION,
    MAX_RECEIPT,
    MAX_SESSION_ID,
    MAX_TEXT,
    MAX_TILE_DATA,
    NEED_DATA,
    Ack,
    Blocked,
    ClipboardIn,
    ClipboardOut,
    Copy,
    Cursor,
    Direction,
    End,
    Fill,
    Hello,
    Help,
    HelpAction,
    HelpState,
    HelpStatus,
    Key,
    MalformedMessage,
    Message,
    MessageTooLarge,
    MessageType,
    Notice,
    NoticeLevel,
    Ping,
    Pointer,
    Pong,
    Receipt,
    Resize,
    Resume,
    Sentinel,
    Sync,
    Tile,
    TileFormat,
    TruncatedStream,
    UnknownMessage,
)

__all__ = [
    "RULES",
    "DisplayDecoder",
    "decode_all",
    "encode",
    "encode_ack",
    "encode_blocked",
    "encode_clipboard_in",
    "encode_clipboard_out",
    "encode_copy",
    "encode_cursor",
    "encode_end",
    "encode_fill",
    "encode_hello",
    "encode_help",
    "encode_help_state",
    "encode_key",
    "encode_notice",
    "encode_ping",
    "encode_pointer",
    "encode_pong",
    "encode_receipt",
    "encode_resize",
    "encode_resume",
    "encode_sync",
    "encode_tile",
]

_MAGIC: Final = {
    TileFormat.PNG: (b"\x89PNG\r\n\x1a\n",),
    TileFormat.JPEG: (b"\xff\xd8\xff",),
}


def _text(raw: bytes | memoryview, what: str) -> str:
    if len(raw) > MAX_TEXT:
        raise MalformedMessage(f"{what} longer than {MAX_TEXT} bytes")
    try:
        return bytes(raw).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise MalformedMessage(f"{what} is not UTF-8") from None


def _clipboard(raw: bytes | memoryview) -> str:
    # The length was bounded from the header (MAX_CLIPBOARD); only the encoding is left to check.
    try:
        return bytes(raw).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise MalformedMessage("clipboard text is not UTF-8") from None


def _dim(value: int, what: str, *, zero_ok: bool = False) -> int:
    if value > MAX_DIMENSION or (value == 0 and not zero_ok):
        raise MalformedMessage(f"{what} {value} outside 1..{MAX_DIMENSION}")
    return value


def _image(fmt: TileFormat, data: bytes) -> bytes:
    # A cheap signature check keeps arbitrary bytes away from the browser's image decoders.
    if fmt in (TileFormat.PALETTE, TileFormat.PALETTE_PACKED):
        try:
            palette.validate(data) if fmt is TileFormat.PALETTE else palette.validate_packed(data)
        except palette.PaletteError as exc:
            raise MalformedMessage(str(exc)) from None
        return data
    if fmt is TileFormat.WEBP:
        ok = len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    else:
        ok = any(data.startswith(m) for m in _MAGIC[fmt])
    if not ok:
        raise MalformedMessage(f"tile data is not {fmt.name}")
    return data


_S_HELLO = struct.Struct(">HHHIB")
_S_RECT = struct.Struct(">HHHH")
_S_TILE = struct.Struct(">HHHHB")
_S_COPY = struct.Struct(">HHHHHH")
_S_SYNC = struct.Struct(">IQ")
_S_NOTICE = struct.Struct(">BH")
_S_END = struct.Struct(">H")
_S_U64 = struct.Struct(">Q")
_S_FILL = struct.Struct(">HHHHBBB")
_S_RESUME = struct.Struct(">HI")
_S_U32 = struct.Struct(">I")
_S_KEY = struct.Struct(">IB")
_S_POINTER = struct.Struct(">HHH")
_S_SIZE = struct.Struct(">HH")


def _d_hello(p: memoryview) -> Hello:
    version, width, height, flags, sid_len = _S_HELLO.unpack_from(p)
    off = _S_HELLO.size
    if sid_len > MAX_SESSION_ID or off + sid_len > len(p):
        raise MalformedMessage("bad session id length")
    sid = _text(p[off : off + sid_len], "session id")
    info = _text(p[off + sid_len :], "info")
    return Hello(version, _dim(width, "width"), _dim(height, "height"), flags, sid, info)


def _d_resize(p: memoryview) -> Resize:
    w, h = _S_SIZE.unpack(p)
    return Resize(_dim(w, "width"), _dim(h, "height"))


def _tile_fmt(value: int) -> TileFormat:
    try:
        return TileFormat(value)
    except ValueError:
        raise MalformedMessage(f"unknown tile format {value}") from None


def _d_tile(p: memoryview) -> Tile:
    x, y, w, h, fmt = _S_TILE.unpack_from(p)
    f = _tile_fmt(fmt)
    _dim(w, "tile width")
    _dim(h, "tile height")
    return Tile(x, y, w, h, f, _image(f, bytes(p[_S_TILE.size :])))


def _d_copy(p: memoryview) -> Copy:
    sx, sy, dx, dy, w, h = _S_COPY.unpack(p)
    return Copy(sx, sy, dx, dy, _dim(w, "copy width"), _dim(h, "copy height"))


def _d_cursor(p: memoryview) -> Cursor:
    hx, hy, w, h = _S_RECT.unpack_from(p)
    png = bytes(p[_S_RECT.size :])
    if w > MAX_CURSOR_SIDE or h > MAX_CURSOR_SIDE:
        raise MalformedMessage("cursor too large")
    if (w == 0) != (h == 0) or (w == 0 and (png or hx or hy)):
        raise MalformedMessage("bad hidden cursor")
    if w and (hx >= w or hy >= h):
        raise MalformedMessage("cursor hotspot outside the image")
    if w:
        _image(TileFormat.PNG, png)
    return Cursor(hx, hy, w, h, png)


def _d_sync(p: memoryview) -> Sync:
    return Sync(*_S_SYNC.unpack(p))


def _d_notice(p: memoryview) -> Notice:
    level, code = _S_NOTICE.unpack_from(p)
    try:
        lv = NoticeLevel(level)
    except ValueError:
        raise MalformedMessage(f"unknown notice level {level}") from None
    return Notice(lv, code, _text(p[_S_NOTICE.size :], "notice text"))


def _d_end(p: memoryview) -> End:
    (code,) = _S_END.unpack_from(p)
    return End(code, _text(p[_S_END.size :], "end text"))


def _d_pong(p: memoryview) -> Pong:
    return Pong(_S_U64.unpack(p)[0])


def _d_fill(p: memoryview) -> Fill:
    x, y, w, h, r, g, b = _S_FILL.unpack(p)
    return Fill(x, y, _dim(w, "fill width"), _dim(h, "fill height"), r, g, b)


def _d_resume(p: memoryview) -> Resume:
    return Resume(*_S_RESUME.unpack(p))


def _d_ack(p: memoryview) -> Ack:
    return Ack(_S_U32.unpack(p)[0])


def _d_key(p: memoryview) -> Key:
    keysym, down = _S_KEY.unpack(p)
    if down > 1:
        raise MalformedMessage("key down flag must be 0 or 1")
    return Key(keysym, bool(down))


def _d_pointer(p: memoryview) -> Pointer:
    return Pointer(*_S_POINTER.unpack(p))


def _d_ping(p: memoryview) -> Ping:
    return Ping(_S_U64.unpack(p)[0])


def _d_clipboard_out(p: memoryview) -> ClipboardOut:
    return ClipboardOut(_clipboard(p))


def _d_receipt(p: memoryview) -> Receipt:
    return Receipt(bytes(p))


def _d_clipboard_in(p: memoryview) -> ClipboardIn:
    return ClipboardIn(_clipboard(p))


def _d_blocked(p: memoryview) -> Blocked:
    return Blocked(p[0])


def _d_help_state(p: memoryview) -> HelpState:
    try:
        status = HelpStatus(p[0])
    except ValueError:
        raise MalformedMessage(f"unknown help status {p[0]}") from None
    return HelpState(status, _text(p[1:], "helper"))


def _d_help(p: memoryview) -> Help:
    try:
        return Help(HelpAction(p[0]))
    except ValueError:
        raise MalformedMessage(f"unknown help action {p[0]}") from None


@dataclass(frozen=True, slots=True)
class _Rule:
    min_len: int
    max_len: int
    direction: Direction
    decode: Callable[[memoryview], Message]


_V, _G = Direction.TO_VIEWER, Direction.TO_GATEWAY
# The one table of every message: payload bounds, direction and decoder.
RULES: Final[dict[MessageType, _Rule]] = {
    MessageType.HELLO: _Rule(
        _S_HELLO.size, _S_HELLO.size + MAX_SESSION_ID + MAX_TEXT, _V, _d_hello
    ),
    MessageType.RESIZE: _Rule(4, 4, _V, _d_resize),
    MessageType.TILE: _Rule(_S_TILE.size + 3, _S_TILE.size + MAX_TILE_DATA, _V, _d_tile),
    MessageType.COPY: _Rule(12, 12, _V, _d_copy),
    MessageType.CURSOR: _Rule(8, 8 + MAX_CURSOR_DATA, _V, _d_cursor),
    MessageType.SYNC: _Rule(12, 12, _V, _d_sync),
    MessageType.NOTICE: _Rule(3, 3 + MAX_TEXT, _V, _d_notice),
    MessageType.END: _Rule(2, 2 + MAX_TEXT, _V, _d_end),
    MessageType.PONG: _Rule(8, 8, _V, _d_pong),
    MessageType.FILL: _Rule(11, 11, _V, _d_fill),
    MessageType.CLIPBOARD_OUT: _Rule(0, MAX_CLIPBOARD, _V, _d_clipboard_out),
    MessageType.RECEIPT: _Rule(1, MAX_RECEIPT, _V, _d_receipt),
    MessageType.RESUME: _Rule(6, 6, _G, _d_resume),
    MessageType.ACK: _Rule(4, 4, _G, _d_ack),
    MessageType.KEY: _Rule(5, 5, _G, _d_key),
    MessageType.POINTER: _Rule(6, 6, _G, _d_pointer),
    MessageType.PING: _Rule(8, 8, _G, _d_ping),
    MessageType.CLIPBOARD_IN: _Rule(0, MAX_CLIPBOARD, _G, _d_clipboard_in),
    MessageType.BLOCKED: _Rule(1, 1, _G, _d_blocked),
    MessageType.HELP_STATE: _Rule(1, 1 + MAX_TEXT, _V, _d_help_state),
    MessageType.HELP: _Rule(1, 1, _G, _d_help),
}


class DisplayDecoder:
    """Resumable decoder for one direction of the stream. Buffers at most one message."""

    def __init__(self, direction: Direction) -> None:
        self._direction = direction
        self._buf = bytearray()
        self._eof = False
        self._rule: _Rule | None = None  # header of the message being collected
        self._need = 0

    def feed(self, data: bytes) -> None:
        """Add received bytes; ``b""`` marks the end of the stream."""
        if self._eof:
            raise RuntimeError("feed() after end of stream")
        if not data:
            self._eof = True
        else:
            self._buf += data

    def next_event(self) -> Message | Sentinel:
        """Return the next message, NEED_DATA, or CLOSED; raises ProtocolError on bad input."""
        if self._rule is None:
            if len(self._buf) < HEADER.size:
                return self._starved()
            mtype, length = HEADER.unpack_from(self._buf)
            self._rule = self._check_header(mtype, length)
            self._need = length
            del self._buf[: HEADER.size]
        if len(self._buf) < self._need:
            return self._starved()
        rule = self._rule
        payload = bytes(self._buf[: self._need])
        del self._buf[: self._need]
        self._rule = None
        try:
            return rule.decode(memoryview(payload))
        except struct.error as exc:
            raise MalformedMessage(str(exc)) from None

    def _starved(self) -> Sentinel:
        if not self._eof:
            return NEED_DATA
        if self._buf or self._rule is not None:
            raise TruncatedStream("stream ended inside a message")
        return CLOSED

    def _check_header(self, mtype: int, length: int) -> _Rule:
        try:
            rule = RULES[MessageType(mtype)]
        except ValueError:
            raise UnknownMessage(f"unknown message type 0x{mtype:02x}") from None
        if rule.direction is not self._direction:
            raise UnknownMessage(f"message type 0x{mtype:02x} not allowed in this direction")
        if length > rule.max_len:
            raise MessageTooLarge(f"{MessageType(mtype).name} of {length} bytes")
        if length < rule.min_len:
            raise MalformedMessage(f"{MessageType(mtype).name} of only {length} bytes")
        return rule


def decode_all(data: bytes, direction: Direction) -> list[Message]:
    """Decode a complete byte string (e.g. one WebSocket frame) into messages."""
    dec = DisplayDecoder(direction)
    dec.feed(data)
    dec.feed(b"")
    out: list[Message] = []
    while (ev := dec.next_event()) is not CLOSED:
        assert not isinstance(ev, Sentinel)  # NEED_DATA cannot follow EOF
        out.append(ev)
    return out


# --- encoders ---------------------------------------------------------------------------------


def _frame(mtype: MessageType, payload: bytes) -> bytes:
    rule = RULES[mtype]
    if not rule.min_len <= len(payload) <= rule.max_len:
        raise ValueError(f"{mtype.name} payload of {len(payload)} bytes out of bounds")
    return HEADER.pack(mtype, len(payload)) + payload


def _utf8(text: str, limit: int) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > limit:
        raise ValueError(f"text longer than {limit} bytes")
    return raw


def encode_hello(m: Hello) -> bytes:
    sid = _utf8(m.session_id, MAX_SESSION_ID)
    head = _S_HELLO.pack(m.version, m.width, m.height, m.flags, len(sid))
    return _frame(MessageType.HELLO, head + sid + _utf8(m.info, MAX_TEXT))


def encode_resize(m: Resize) -> bytes:
    return _frame(MessageType.RESIZE, _S_SIZE.pack(m.width, m.height))


def encode_tile(m: Tile) -> bytes:
    head = _S_TILE.pack(m.x, m.y, m.w, m.h, m.format)
    return _frame(MessageType.TILE, head + m.data)


def encode_copy(m: Copy) -> bytes:
    return _frame(MessageType.COPY, _S_COPY.pack(m.src_x, m.src_y, m.dst_x, m.dst_y, m.w, m.h))


def encode_cursor(m: Cursor) -> bytes:
    return _frame(MessageType.CURSOR, _S_RECT.pack(m.hot_x, m.hot_y, m.w, m.h) + m.png)


def encode_sync(m: Sync) -> bytes:
    return _frame(MessageType.SYNC, _S_SYNC.pack(m.frame_id, m.timestamp_ms))


def encode_notice(m: Notice) -> bytes:
    head = _S_NOTICE.pack(m.level, m.code)
    return _frame(MessageType.NOTICE, head + _utf8(m.text, MAX_TEXT))


def encode_end(m: End) -> bytes:
    return _frame(MessageType.END, _S_END.pack(m.code) + _utf8(m.text, MAX_TEXT))


def encode_pong(m: Pong) -> bytes:
    return _frame(MessageType.PONG, _S_U64.pack(m.t))


def encode_fill(m: Fill) -> bytes:
    return _frame(MessageType.FILL, _S_FILL.pack(m.x, m.y, m.w, m.h, m.r, m.g, m.b))


def encode_resume(m: Resume) -> bytes:
    return _frame(MessageType.RESUME, _S_RESUME.pack(m.version, m.last_frame_id))


def encode_ack(m: Ack) -> bytes:
    return _frame(MessageType.ACK, _S_U32.pack(m.frame_id))


def encode_key(m: Key) -> bytes:
    return _frame(MessageType.KEY, _S_KEY.pack(m.keysym, 1 if m.down else 0))


def encode_pointer(m: Pointer) -> bytes:
    return _frame(MessageType.POINTER, _S_POINTER.pack(m.x, m.y, m.buttons))


def encode_ping(m: Ping) -> bytes:
    return _frame(MessageType.PING, _S_U64.pack(m.t))


def encode_clipboard_out(m: ClipboardOut) -> bytes:
    return _frame(MessageType.CLIPBOARD_OUT, _utf8(m.text, MAX_CLIPBOARD))


def encode_receipt(m: Receipt) -> bytes:
    if not 0 < len(m.data) <= MAX_RECEIPT:
        raise ValueError(f"Receipt: 1..{MAX_RECEIPT} bytes")
    return _frame(MessageType.RECEIPT, m.data)


def encode_clipboard_in(m: ClipboardIn) -> bytes:
    return _frame(MessageType.CLIPBOARD_IN, _utf8(m.text, MAX_CLIPBOARD))


def encode_blocked(m: Blocked) -> bytes:
    return _frame(MessageType.BLOCKED, bytes((m.kind,)))


def encode_help_state(m: HelpState) -> bytes:
    return _frame(MessageType.HELP_STATE, bytes((m.status,)) + _utf8(m.helper, MAX_TEXT))


def encode_help(m: Help) -> bytes:
    return _frame(MessageType.HELP, bytes((m.action,)))


_ENCODERS: Final[dict[type, Callable[..., bytes]]] = {
    Hello: encode_hello,
    Resize: encode_resize,
    Tile: encode_tile,
    Copy: encode_copy,
    Cursor: encode_cursor,
    Sync: encode_sync,
    Notice: encode_notice,
    End: encode_end,
    Pong: encode_pong,
    Fill: encode_fill,
    Resume: encode_resume,
    Ack: encode_ack,
    Key: encode_key,
    Pointer: encode_pointer,
    Ping: encode_ping,
    ClipboardOut: encode_clipboard_out,
    ClipboardIn: encode_clipboard_in,
    Receipt: encode_receipt,
    Blocked: encode_blocked,
    HelpState: encode_help_state,
    Help: encode_help,
}


def encode(message: Message) -> bytes:
    """Serialise one message; raises ValueError (a local bug) if a field is out of range."""
    try:
        return _ENCODERS[type(message)](message)
    except struct.error as exc:
        raise ValueError(f"{type(message).__name__}: {exc}") from None

