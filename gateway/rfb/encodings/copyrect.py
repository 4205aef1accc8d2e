"""CopyRect (1): | src-x u16 | src-y u16 | — copy a region already on screen.

Attacker-controlled: the source position. Limit: the source rectangle must lie inside the
framebuffer (the destination was checked by the core).
"""

from __future__ import annotations

import struct

from ..buffer import ReceiveBuffer
from ..errors import RemoteProtocolError
from ..surface import Surface
from .base import DecodeContext, Rect


class CopyRectDecoder:
    draws_pixels = True

    def decode_rect(
        self, rect: Rect, buf: ReceiveBuffer, surface: Surface, ctx: DecodeContext
    ) -> bool:
        data = buf.consume_exactly(4)
        if data is None:
            return False
        src_x, src_y = struct.unpack(">HH", data)
        if src_x + rect.width > ctx.fb_width or src_y + rect.height > ctx.fb_height:
            raise RemoteProtocolError(
                f"CopyRect source {rect.width}x{rect.height}+{src_x}+{src_y} lies outside "
                f"the {ctx.fb_width}x{ctx.fb_height} framebuffer"
            )
        if rect.width and rect.height:
            surface.copy(src_x, src_y, rect.x, rect.y, rect.width, rect.height)
        return True
