"""RFB wire codes, the pixel format and the client-to-server messages (RFC 6143 §7.4-7.5).

Every encoder validates its arguments (LocalProtocolError) so a bug upstream cannot put a
malformed message on the wire. Layouts are given one line each, big-endian throughout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from .errors import LocalProtocolError


class SecurityType(IntEnum):
    INVALID = 0
    NONE = 1
    VNC_AUTH = 2


class ClientMessageType(IntEnum):
    SET_PIXEL_FORMAT = 0
    SET_ENCODINGS = 2
    FRAMEBUFFER_UPDATE_REQUEST = 3
    KEY_EVENT = 4
    POINTER_EVENT = 5
    CLIENT_CUT_TEXT = 6


class ServerMessageType(IntEnum):
    FRAMEBUFFER_UPDATE = 0
    SET_COLOUR_MAP_ENTRIES = 1
    BELL = 2
    SERVER_CUT_TEXT = 3


#: | bpp u8 | depth u8 | big-endian u8 | true-colour u8 | r-max u16 | g-max u16 | b-max u16 |
#: | r-shift u8 | g-shift u8 | b-shift u8 | pad 3 |
_PIXEL_FORMAT = struct.Struct(">BBBBHHHBBB3x")
PIXEL_FORMAT_LENGTH = _PIXEL_FORMAT.size


@dataclass(frozen=True, slots=True)
class PixelFormat:
    bits_per_pixel: int
    depth: int
    big_endian: bool
    true_colour: bool
    red_max: int
    green_max: int
    blue_max: int
    red_shift: int
    green_shift: int
    blue_shift: int

    def pack(self) -> bytes:
        return _PIXEL_FORMAT.pack(
            self.bits_per_pixel, self.depth, self.big_endian, self.true_colour,
            self.red_max, self.green_max, self.blue_max,
            self.red_shift, self.green_shift, self.blue_shift,
        )  # fmt: skip

    @classmethod
    def unpack(cls, data: bytes) -> PixelFormat:
        bpp, depth, be, tc, rm, gm, bm, rs, gs, bs = _PIXEL_FORMAT.unpack(data)
        return cls(bpp, depth, bool(be), bool(tc), rm, gm, bm, rs, gs, bs)


#: The only format we ever ask for: B, G, R, X bytes in memory (see surface.py).
BGRX = PixelFormat(32, 24, False, True, 255, 255, 255, 16, 8, 0)


def _u16(name: str, value: int) -> int:
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{name} {value} does not fit in u16")
    return value


def set_pixel_format(fmt: PixelFormat = BGRX) -> bytes:
    """| type=0 u8 | pad 3 | pixel-format 16 |"""
    return struct.pack(">B3x", ClientMessageType.SET_PIXEL_FORMAT) + fmt.pack()


def set_encodings(encodings: tuple[int, ...] | list[int]) -> bytes:
    """| type=2 u8 | pad 1 | count u16 | encoding s32 × count |"""
    _u16("encoding count", len(encodings))
    for e in encodings:
        if not -(2**31) <= e < 2**31:
            raise LocalProtocolError(f"encoding {e} does not fit in s32")
    head = struct.pack(">BxH", ClientMessageType.SET_ENCODINGS, len(encodings))
    return head + struct.pack(f">{len(encodings)}i", *encodings)


def framebuffer_update_request(incremental: bool, x: int, y: int, w: int, h: int) -> bytes:
    """| type=3 u8 | incremental u8 | x u16 | y u16 | w u16 | h u16 |"""
    return struct.pack(
        ">BBHHHH", ClientMessageType.FRAMEBUFFER_UPDATE_REQUEST, bool(incremental),
        _u16("x", x), _u16("y", y), _u16("width", w), _u16("height", h),
    )  # fmt: skip


def key_event(keysym: int, down: bool) -> bytes:
    """| type=4 u8 | down u8 | pad 2 | keysym u32 |"""
    if not 0 <= keysym <= 0xFFFFFFFF:
        raise LocalProtocolError(f"keysym {keysym} does not fit in u32")
    return struct.pack(">BB2xI", ClientMessageType.KEY_EVENT, bool(down), keysym)


def pointer_event(x: int, y: int, button_mask: int) -> bytes:
    """| type=5 u8 | button-mask u8 | x u16 | y u16 |"""
    if not 0 <= button_mask <= 0xFF:
        raise LocalProtocolError(f"button mask {button_mask} does not fit in u8")
    return struct.pack(
        ">BBHH", ClientMessageType.POINTER_EVENT, button_mask, _u16("x", x), _u16("y", y)
    )


def client_cut_text(text: bytes) -> bytes:
    """| type=6 u8 | pad 3 | length u32 | text (ISO 8859-1) |"""
    if len(text) > 0xFFFFFFFF:
        raise LocalProtocolError("cut text too long")
    return struct.pack(">B3xI", ClientMessageType.CLIENT_CUT_TEXT, len(text)) + text


def client_init(shared: bool = True) -> bytes:
    """| shared-flag u8 |"""
    return bytes([1 if shared else 0])
