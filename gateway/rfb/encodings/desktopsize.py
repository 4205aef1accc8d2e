"""DesktopSize (-223) and ExtendedDesktopSize (-308) pseudo-encodings: the desktop resized.

Attacker-controlled: the new size and the screen list. Limits: the size must be within
Limits.max_width × max_height; the screen list is at most 255 × 16 bytes.

ExtendedDesktopSize: x = reason, y = status, w/h = size, then
| screens u8 | pad 3 | (id u32 | x u16 | y u16 | w u16 | h u16 | flags u32) × screens |
"""

from __future__ import annotations

from ..buffer import ReceiveBuffer
from ..errors import RemoteProtocolError
from ..limits import Limits
from ..surface import Surface
from .base import DecodeContext, Rect

_SCREEN = 16


def check_size(width: int, height: int, limits: Limits, what: str) -> None:
    if width > limits.max_width or height > limits.max_height:
        raise RemoteProtocolError(
            f"{what} {width}x{height} exceeds the {limits.max_width}x{limits.max_height} limit"
        )


def _apply(width: int, height: int, surface: Surface, ctx: DecodeContext) -> None:
    # Servers also send their current size (e.g. in reply to SetEncodings): not a resize.
    if (width, height) == (ctx.fb_width, ctx.fb_height):
        return
    surface.resize(width, height)
    ctx.fb_width, ctx.fb_height = width, height
    ctx.resized = (width, height)


class DesktopSizeDecoder:
    draws_pixels = False

    def decode_rect(
        self, rect: Rect, buf: ReceiveBuffer, surface: Surface, ctx: DecodeContext
    ) -> bool:
        check_size(rect.width, rect.height, ctx.limits, "DesktopSize")
        _apply(rect.width, rect.height, surface, ctx)
        return True


class ExtendedDesktopSizeDecoder:
    draws_pixels = False

    def decode_rect(
        self, rect: Rect, buf: ReceiveBuffer, surface: Surface, ctx: DecodeContext
    ) -> bool:
        head = buf.consume_exactly(4)
        if head is None:
            return False
        if buf.consume_exactly(head[0] * _SCREEN) is None:
            return False
        status = rect.y
        if status != 0:  # an answer to a resize request of ours that failed; size unchanged
            return True
        check_size(rect.width, rect.height, ctx.limits, "ExtendedDesktopSize")
        _apply(rect.width, rect.height, surface, ctx)
        return True


class LastRectDecoder:
    """LastRect (-224): no payload; the update ends here (count was 0xFFFF)."""

    draws_pixels = False

    def decode_rect(
        self, rect: Rect, buf: ReceiveBuffer, surface: Surface, ctx: DecodeContext
    ) -> bool:
        ctx.last_rect = True
        return True
