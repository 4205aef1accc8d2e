"""Display protocol between the gateway and the viewer page (relayed unchanged by the agent).

Attacker-controlled: every byte fed to DisplayDecoder.feed (the viewer/agent side is untrusted;
the viewer also treats the gateway stream as hostile). Limits: each type has a maximum payload
length checked from the 5-byte header before anything is buffered for it; texts are strict UTF-8
with byte caps (clipboard text MAX_CLIPBOARD; the policy's smaller cap is the session's job);
dimensions are capped at MAX_DIMENSION; the decoder buffers at most one message.

Every message is ``| type u8 | length u32 | payload |`` in network byte order (see
docs/PROTOCOL.md). Pure standard library, no I/O: ``feed(data)`` (``b""`` = end of stream),
``next_event()`` -> message, ``NEED_DATA`` or ``CLOSED``; ``encode(message) -> bytes``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Final

# 2: clipboard flags and messages (ClipboardOut, ClipboardIn, Blocked). A version-1 peer would
# take any of them for a protocol error and could not announce support, hence the bump.
VERSION: Final = 2
HEADER = struct.Struct(">BI")
MAX_DIMENSION: Final = 8192  # desktop and tile width/height
MAX_TILE_DATA: Final = 4 * 1024 * 1024  # one encoded image
MAX_CURSOR_SIDE: Final = 256
MAX_CURSOR_DATA: Final = 256 * 1024
MAX_TEXT: Final = 1024  # UTF-8 bytes of a Notice/End text or Hello info
MAX_SESSION_ID: Final = 64
MAX_CLIPBOARD: Final = 1024 * 1024  # UTF-8 bytes of one ClipboardIn/ClipboardOut text
MAX_RECEIPT: Final = 4096  # bytes of one work receipt file (gateway.wire.receipt)


class MessageType(IntEnum):
    # gateway -> viewer
    HELLO = 0x01
    RESIZE = 0x02
    TILE = 0x03
    COPY = 0x04
    CURSOR = 0x05
    SYNC = 0x06
    NOTICE = 0x07
    END = 0x08
    PONG = 0x09
    FILL = 0x0A
    CLIPBOARD_OUT = 0x0B
    HELP_STATE = 0x20  # call-centre help (issue 13): only after a Hello with HELP
    # agent -> viewer only: the gateway sends the receipt to the agent as a text frame (so no
    # older viewer ever sees this type); the agent hands it to its own page.
    RECEIPT = 0x0C
    # viewer -> gateway
    RESUME = 0x80
    ACK = 0x81
    KEY = 0x82
    POINTER = 0x83
    PING = 0x84
    CLIPBOARD_IN = 0x85
    BLOCKED = 0x86
    HELP = 0xA0  # call-centre help (issue 13): only after a Hello with HELP


class TileFormat(IntEnum):
    PNG = 1
    JPEG = 2
    WEBP = 3


class HelloFlags(IntFlag):
    VIEW_ONLY = 1  # input is ignored by the gateway
    RECORDED = 2  # the session is being recorded
    WATERMARKED = 4  # frames carry a watermark
    # Set from the policy's `clipboard`; the viewer sends ClipboardIn only with TO_REMOTE and
    # the gateway sends ClipboardOut only with TO_LOCAL (each side also enforces it on receipt).
    CLIPBOARD_TO_REMOTE = 8
    CLIPBOARD_TO_LOCAL = 16
    # Call-centre help is offered: the viewer may send Help, the gateway sends HelpState. A
    # flag rather than a version bump, so a viewer without help keeps working unchanged.
    HELP = 256


class BlockedKind(IntEnum):
    """What the viewer page refused locally (Blocked); unknown kinds are carried as numbers."""

    PASTE = 1
    COPY = 2  # copy or cut
    DROP = 3  # a file or text dropped onto the page
    PRINT = 4
    DRAG = 5  # dragging the screen out of the page


class HelpStatus(IntEnum):
    """Where a session's call-centre help stands (HelpState)."""

    NONE = 0  # nobody asked, or help is over
    ASKED = 1  # the teacher asked; waiting for a helpdesk operator
    WATCHING = 2  # an operator sees the screen, view-only
    CONTROL = 3  # the teacher let the operator type and point too


class HelpAction(IntEnum):
    """What the teacher did in the viewer (Help)."""

    ASK = 1  # ask the call centre for help
    ALLOW_CONTROL = 2  # let the operator who is watching type and point
    VIEW_ONLY = 3  # take control back (the operator keeps watching)
    END = 4  # cancel the request, or end the help (the operator is disconnected)


class NoticeLevel(IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2


class NoticeCode(IntEnum):
    """What a Notice is about (the viewer may show some apart); unknown codes are plain notes."""

    IDLE = 1  # no input for a while
    WATCHED = 2  # an officer is viewing the session
    # The in-session posture re-check: WARNING = what is wrong and what to do (stays up until
    # an INFO with this code says it is fixed).
    POSTURE = 3


class EndCode(IntEnum):
    """Why a session ended; the viewer shows the text that comes with it."""

    NORMAL = 0
    IDLE_TIMEOUT = 1
    TIME_LIMIT = 2
    TERMINATED = 3  # by an officer or by revocation
    DESKTOP_LOST = 4  # the workspace/VNC server went away
    PROTOCOL_ERROR = 5
    UNSUPPORTED_VERSION = 6
    REPLACED = 7  # a newer connection took over the session
    SERVER_SHUTDOWN = 8
    POSTURE = 9  # the home PC failed the in-session security check (policy posture.on_fail)


_MAGIC: Final = {
    TileFormat.PNG: (b"\x89PNG\r\n\x1a\n",),
    TileFormat.JPEG: (b"\xff\xd8\xff",),
}


class ProtocolError(Exception):
    """The peer broke the protocol; ``code`` is the End code to send back before closing."""

    code: EndCode = EndCode.PROTOCOL_ERROR


class UnknownMessage(ProtocolError):
    """A type byte this version does not define, or one not allowed in this direction."""


class MessageTooLarge(ProtocolError):
    """A header announced more payload than the type allows (nothing was buffered for it)."""


class MalformedMessage(ProtocolError):
    """A payload of the right size whose fields are invalid."""


class TruncatedStream(ProtocolError):
    """The stream ended inside a message."""


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """| 0x01 | len | version u16 | width u16 | height u16 | flags u32 | sid_len u8 | sid |
    info utf-8 (rest) |"""

    version: int
    width: int
    height: int
    flags: int = 0
    session_id: str = ""
    info: str = ""


@dataclass(frozen=True, slots=True)
class Resize:
    """| 0x02 | len=4 | width u16 | height u16 |"""

    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Tile:
    """| 0x03 | len | x u16 | y u16 | w u16 | h u16 | format u8 | image bytes (rest) |"""

    x: int
    y: int
    w: int
    h: int
    format: TileFormat
    data: bytes


@dataclass(frozen=True, slots=True)
class Copy:
    """| 0x04 | len=12 | src_x u16 | src_y u16 | dst_x u16 | dst_y u16 | w u16 | h u16 |"""

    src_x: int
    src_y: int
    dst_x: int
    dst_y: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class Cursor:
    """| 0x05 | len | hot_x u16 | hot_y u16 | w u16 | h u16 | RGBA PNG (rest) |; w=h=0 hides it"""

    hot_x: int
    hot_y: int
    w: int
    h: int
    png: bytes


@dataclass(frozen=True, slots=True)
class Sync:
    """| 0x06 | len=12 | frame_id u32 | timestamp_ms u64 | — ends a frame; the viewer Acks it"""

    frame_id: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Notice:
    """| 0x07 | len | level u8 | code u16 | text utf-8 (rest) |"""

    level: NoticeLevel
    code: int
    text: str


@dataclass(frozen=True, slots=True)
class End:
    """| 0x08 | len | code u16 | text utf-8 (rest) | — the last message of a session"""

    code: int
    text: str


@dataclass(frozen=True, slots=True)
class Pong:
    """| 0x09 | len=8 | t u64 | — echoes a Ping's t"""

    t: int


@dataclass(frozen=True, slots=True)
class Fill:
    """| 0x0A | len=11 | x u16 | y u16 | w u16 | h u16 | r u8 | g u8 | b u8 | — a solid tile"""

    x: int
    y: int
    w: int
    h: int
    r: int
    g: int
    b: int


@dataclass(frozen=True, slots=True)
class Resume:
    """| 0x80 | len=6 | version u16 | last_frame_id u32 | — (re)attach; answered by Hello + key
    frame"""

    version: int
    last_frame_id: int = 0


@dataclass(frozen=True, slots=True)
class Ack:
    """| 0x81 | len=4 | frame_id u32 | — every frame up to frame_id has been drawn"""

    frame_id: int


@dataclass(frozen=True, slots=True)
class Key:
    """| 0x82 | len=5 | keysym u32 | down u8 (0|1) |"""

    keysym: int
    down: bool


@dataclass(frozen=True, slots=True)
class Pointer:
    """| 0x83 | len=6 | x u16 | y u16 | buttons u16 | — RFB button bits (3/4 wheel, 5/6 h-wheel)"""

    x: int
    y: int
    buttons: int


@dataclass(frozen=True, slots=True)
class Ping:
    """| 0x84 | len=8 | t u64 | — opaque viewer timestamp, echoed in Pong"""

    t: int


@dataclass(frozen=True, slots=True)
class ClipboardOut:
    """| 0x0B | len ≤ 1 MiB | text utf-8 (rest) | — the desktop's clipboard, only with
    CLIPBOARD_TO_LOCAL"""

    text: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """| 0x0C | len ≤ 4096 | receipt file bytes | — the session's signed work receipt, from the
    agent to its page just before End (the page offers it for download)"""

    data: bytes


@dataclass(frozen=True, slots=True)
class ClipboardIn:
    """| 0x85 | len ≤ 1 MiB | text utf-8 (rest) | — the home clipboard pasted into the page, only
    with CLIPBOARD_TO_REMOTE"""

    text: str


@dataclass(frozen=True, slots=True)
class Blocked:
    """| 0x86 | len=1 | kind u8 | — a redirection attempt the page refused (BlockedKind), so the
    gateway can audit it"""

    kind: int


@dataclass(frozen=True, slots=True)
class HelpState:
    """| 0x20 | len | status u8 | helper utf-8 (rest, ≤ MAX_TEXT) | — the call-centre help of
    this session (HelpStatus) and who the operator is ("name (id)"), empty when nobody joined"""

    status: HelpStatus
    helper: str = ""


@dataclass(frozen=True, slots=True)
class Help:
    """| 0xA0 | len=1 | action u8 | — the teacher asks for help, lets the operator take control,
    takes it back or ends the help (HelpAction)"""

    action: HelpAction


ToViewer = (Hello | Resize | Tile | Copy | Cursor | Sync | Notice | End | Pong | Fill
            | ClipboardOut | HelpState | Receipt)
ToGateway = Resume | Ack | Key | Pointer | Ping | ClipboardIn | Blocked | Help
Message = ToViewer | ToGateway


class Direction(IntEnum):
    """Which side's messages a decoder accepts."""

    TO_VIEWER = 0
    TO_GATEWAY = 1


class Sentinel(IntEnum):
    NEED_DATA = 0  # feed more bytes
    CLOSED = 1  # the stream ended cleanly between messages


NEED_DATA: Final = Sentinel.NEED_DATA
CLOSED: Final = Sentinel.CLOSED

_U16 = 0xFFFF
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


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
