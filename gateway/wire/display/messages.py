"""Display protocol messages: the frozen dataclasses, wire codes and limits (no encoding here).

Every message is ``| type u8 | length u32 | payload |`` in network byte order; each dataclass's
docstring gives its payload layout (docs/PROTOCOL.md has them all). The codec that turns these into
bytes and back, and enforces the limits below on untrusted input, is gateway.wire.display.codec.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Final

__all__ = [
    "CLOSED",
    "HEADER",
    "MAX_CLIPBOARD",
    "MAX_CURSOR_DATA",
    "MAX_CURSOR_SIDE",
    "MAX_DIMENSION",
    "MAX_RECEIPT",
    "MAX_SESSION_ID",
    "MAX_TEXT",
    "MAX_TILE_DATA",
    "MIN_VERSION",
    "NEED_DATA",
    "VERSION",
    "Ack",
    "Blocked",
    "BlockedKind",
    "ClipboardIn",
    "ClipboardOut",
    "Copy",
    "Cursor",
    "Direction",
    "End",
    "EndCode",
    "Fill",
    "Hello",
    "HelloFlags",
    "Help",
    "HelpAction",
    "HelpState",
    "HelpStatus",
    "Key",
    "MalformedMessage",
    "Message",
    "MessageTooLarge",
    "MessageType",
    "Notice",
    "NoticeCode",
    "NoticeLevel",
    "Ping",
    "Pointer",
    "Pong",
    "ProtocolError",
    "Receipt",
    "Resize",
    "Resume",
    "Sentinel",
    "Sync",
    "Tile",
    "TileFormat",
    "ToGateway",
    "ToViewer",
    "TruncatedStream",
    "UnknownMessage",
]

# 2: clipboard flags and messages (ClipboardOut, ClipboardIn, Blocked). A version-1 peer would
# take any of them for a protocol error and could not announce support, hence the bump.
# 3: the PALETTE tile format (gateway.wire.display.palette). The gateway answers a version-2
# viewer (an older agent) in version 2 and never sends it PALETTE tiles.
# 4: the PALETTE_PACKED tile format (the palette inside the zlib stream). A version-3 viewer
# is answered in version 3 and gets PALETTE tiles instead.
VERSION: Final = 4
MIN_VERSION: Final = 2  # the oldest viewer version a gateway still serves
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
    PALETTE = 4  # version ≥ 3: palette + zlib indices (gateway.wire.display.palette)
    PALETTE_PACKED = 5  # version ≥ 4: the palette as planar deltas inside the zlib stream


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
    TIME_LIMIT = 4  # the session reaches its maximum duration in a few minutes


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
