"""Raw (0): width × height BGRX pixels, row by row. Drawn as rows arrive so a big rectangle
never waits whole in the buffer; the rectangle is already bounded by the framebuffer.

The rows are blitted straight from the receive buffer (a view, no copy): a scrolled view is
megabytes of Raw from Xvnc per step, and each copy of it is gateway CPU (issue 11)."""

from __future__ import annotations

from ..buffer import ReceiveBuffer
from ..surface import BYTES_PER_PIXEL, Surface
from .base import DecodeContext, Rect

#: Draw at most this many bytes per blit so memory per step stays small.
_MAX_CHUNK = 1 << 20


class RawDecoder:
    draws_pixels = True

    def __init__(self) -> None:
        self._rows_done = 0

    def decode_rect(
        self, rect: Rect, buf: ReceiveBuffer, surface: Surface, ctx: DecodeContext
    ) -> bool:
        row_bytes = rect.width * BYTES_PER_PIXEL
        if row_bytes == 0 or rect.height == 0:
            return True
        max_rows = max(1, _MAX_CHUNK // row_bytes)
        while self._rows_done < rect.height:
            rows = min(len(buf) // row_bytes, rect.height - self._rows_done, max_rows)
            if rows == 0:
                return False
            data = buf.consume_view(rows * row_bytes)
            assert data is not None
            surface.blit(rect.x, rect.y + self._rows_done, rect.width, rows, data)
            data.release()  # the surface has copied the rows; the view must not outlive them
            # Drawn rows are final: commit so a rollback never replays them.
            buf.commit()
            self._rows_done += rows
        self._rows_done = 0
        return True
