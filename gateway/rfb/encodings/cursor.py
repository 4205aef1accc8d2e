"""Cursor (-239) pseudo-encoding: x/y = hot spot, w/h = cursor size, then
| pixels w×h×4 (BGRX) | mask ((w+7)//8)×h, 1 bit per pixel, MSB first |.

Attacker-controlled: size, hot spot and contents. Limits: size at most
Limits.max_cursor_size square; the hot spot is clamped into the cursor.
"""

from __future__ import annotations

from ..buffer import ReceiveBuffer
from ..errors import RemoteProtocolError
from ..surface import BYTES_PER_PIXEL, Surface
from .base import DecodeContext, Rect


class CursorDecoder:
    draws_pixels = False

    def decode_rect(
        self, rect: Rect, buf: ReceiveBuffer, surface: Surface, ctx: DecodeContext
    ) -> bool:
        w, h = rect.width, rect.height
        limit = ctx.limits.max_cursor_size
        if w > limit or h > limit:
            raise RemoteProtocolError(f"cursor {w}x{h} exceeds the {limit}x{limit} limit")
        pixels = buf.consume_exactly(w * h * BYTES_PER_PIXEL)
        if pixels is None:
            return False
        mask = buf.consume_exactly((w + 7) // 8 * h)
        if mask is None:
            return False
        hot_x = min(rect.x, max(w - 1, 0))
        hot_y = min(rect.y, max(h - 1, 0))
        surface.set_cursor(hot_x, hot_y, w, h, pixels, mask)
        return True
