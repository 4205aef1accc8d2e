"""What every decoder shares: the rectangle, the decode context and the decoder protocol.

A decoder reads one rectangle's payload from the ReceiveBuffer. It returns False when the
payload is incomplete, having changed nothing it cannot redo (the core rolls the buffer back
and calls again with more data), and True once the rectangle is drawn into the Surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..buffer import ReceiveBuffer
from ..limits import Limits
from ..surface import Surface


@dataclass(frozen=True, slots=True)
class Rect:
    """| x u16 | y u16 | width u16 | height u16 | encoding s32 | (the rectangle header)"""

    x: int
    y: int
    width: int
    height: int
    encoding: int


@dataclass(slots=True)
class DecodeContext:
    """Connection state decoders read (fb size, limits) and pseudo-encodings write."""

    fb_width: int
    fb_height: int
    limits: Limits
    #: Set by a size pseudo-encoding; the core turns it into a Resized event.
    resized: tuple[int, int] | None = None
    #: Set by LastRect: the update ends here whatever its rectangle count said.
    last_rect: bool = False


class Decoder(Protocol):
    #: False for pseudo-encodings, whose x/y/w/h are not a region of the framebuffer.
    draws_pixels: bool

    def decode_rect(
        self, rect: Rect, buf: ReceiveBuffer, surface: Surface, ctx: DecodeContext
    ) -> bool:
        """Draw one rectangle; False = need more data (the core rolls back and retries)."""
        ...
