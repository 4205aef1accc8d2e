"""The seam between the RFB client and the display pipeline.

The RFB side only writes pixels into a Surface and knows nothing of how they are shipped
(guacamole-server's split). Pixels are 32 bpp, depth 24, little-endian true colour with red at
shift 16, green 8, blue 0, so each pixel is the four bytes B, G, R, X in memory ("BGRX").
"""

from __future__ import annotations

from typing import Protocol

BYTES_PER_PIXEL = 4


class Surface(Protocol):
    """What an RFB decoder draws into. Coordinates are already bounds-checked by the decoder."""

    def resize(self, width: int, height: int) -> None:
        """The desktop changed size (ServerInit or DesktopSize); contents become undefined."""

    def fill(self, x: int, y: int, w: int, h: int, pixel: bytes) -> None:
        """Fill a rectangle with one BGRX pixel (4 bytes)."""

    def copy(self, src_x: int, src_y: int, x: int, y: int, w: int, h: int) -> None:
        """CopyRect: copy a w×h rectangle from (src_x, src_y) to (x, y); regions may overlap."""

    def blit(self, x: int, y: int, w: int, h: int, data: bytes | bytearray | memoryview) -> None:
        """Draw w×h BGRX pixels given row by row (len(data) == w * h * 4). ``data`` may be a
        read-only view into the receive buffer, valid only during the call: copy, never keep."""

    def set_cursor(
        self, hot_x: int, hot_y: int, w: int, h: int, pixels: bytes, mask: bytes
    ) -> None:
        """Cursor pseudo-encoding: BGRX pixels and a 1-bit mask, rows padded to whole bytes."""
