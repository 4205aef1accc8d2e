"""A bytearray BGRX Surface for tests (the production Framebuffer lives in gateway/display/)."""

from __future__ import annotations

from PIL import Image


class MemorySurface:
    def __init__(self, width: int = 0, height: int = 0) -> None:
        self.resize(width, height)
        self.cursor: tuple[int, int, int, int, bytes, bytes] | None = None
        self.resizes: list[tuple[int, int]] = []

    def resize(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.data = bytearray(width * height * 4)
        if hasattr(self, "resizes"):
            self.resizes.append((width, height))

    def _check(self, x: int, y: int, w: int, h: int) -> None:
        # Decoders promise in-bounds coordinates; a violation is a decoder bug.
        assert min(x, y) >= 0 and x + w <= self.width and y + h <= self.height, (x, y, w, h)

    def fill(self, x: int, y: int, w: int, h: int, pixel: bytes) -> None:
        self._check(x, y, w, h)
        assert len(pixel) == 4
        row = pixel * w
        for r in range(h):
            off = ((y + r) * self.width + x) * 4
            self.data[off : off + w * 4] = row

    def copy(self, src_x: int, src_y: int, x: int, y: int, w: int, h: int) -> None:
        self._check(src_x, src_y, w, h)
        self._check(x, y, w, h)
        rows = [self.row(src_x, src_y + r, w) for r in range(h)]
        for r, row in enumerate(rows):
            off = ((y + r) * self.width + x) * 4
            self.data[off : off + w * 4] = row

    def blit(self, x: int, y: int, w: int, h: int, data: bytes) -> None:
        self._check(x, y, w, h)
        assert len(data) == w * h * 4, (len(data), w, h)
        for r in range(h):
            off = ((y + r) * self.width + x) * 4
            self.data[off : off + w * 4] = data[r * w * 4 : (r + 1) * w * 4]

    def set_cursor(
        self, hot_x: int, hot_y: int, w: int, h: int, pixels: bytes, mask: bytes
    ) -> None:
        self.cursor = (hot_x, hot_y, w, h, pixels, mask)

    # -- test helpers ---------------------------------------------------------------------
    def row(self, x: int, y: int, w: int) -> bytes:
        off = (y * self.width + x) * 4
        return bytes(self.data[off : off + w * 4])

    def pixel(self, x: int, y: int) -> bytes:
        return self.row(x, y, 1)

    def rgb(self, x: int, y: int) -> tuple[int, int, int]:
        b, g, r, _ = self.pixel(x, y)
        return (r, g, b)

    def image(self) -> Image.Image:
        return Image.frombytes("RGB", (self.width, self.height), bytes(self.data), "raw", "BGRX")
