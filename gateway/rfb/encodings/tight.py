"""Tight (7): | control u8 | ... | — fill, JPEG, or basic (filter + up to 4 zlib streams).

Attacker-controlled: every byte. Limits: compact lengths are at most 4 MiB by construction
and must fit the rectangle; inflated data must be exactly the size the filter implies; JPEG
dimensions must equal the rectangle's before Pillow decodes anything.
"""

from __future__ import annotations

import io
import warnings
import zlib

from PIL import Image

from ..buffer import ReceiveBuffer
from ..errors import RemoteProtocolError
from ..surface import Surface
from .base import DecodeContext, Rect
from .inflate import inflate_bounded
from .pixels import packed_row_bytes, palette_lookup, rgb_to_bgrx, unpack_indices

TPIXEL = 3
_FILL, _JPEG, _PNG = 0x8, 0x9, 0xA
_FILTER_COPY, _FILTER_PALETTE, _FILTER_GRADIENT = 0, 1, 2
_MIN_COMPRESSED = 12  # below this the data is sent uncompressed


def read_compact_length(buf: ReceiveBuffer) -> int | None:
    """| 1-3 bytes, 7 bits each, least significant first (the third byte has 8) |"""
    value = 0
    for i in range(3):
        b = buf.consume_exactly(1)
        if b is None:
            return None
        if i == 2:
            return value | (b[0] << 14)
        value |= (b[0] & 0x7F) << (7 * i)
        if not b[0] & 0x80:
            return value
    raise AssertionError("unreachable")


class TightDecoder:
    draws_pixels = True

    def __init__(self) -> None:
        self._streams = [zlib.decompressobj() for _ in range(4)]

    def decode_rect(
        self, rect: Rect, buf: ReceiveBuffer, surface: Surface, ctx: DecodeContext
    ) -> bool:
        head = buf.consume_exactly(1)
        if head is None:
            return False
        control = head[0]
        kind = control >> 4
        if kind == _FILL:
            px = buf.consume_exactly(TPIXEL)
            if px is None:
                return False
            self._reset(control)
            if rect.width and rect.height:
                surface.fill(rect.x, rect.y, rect.width, rect.height, rgb_to_bgrx(px))
            return True
        if kind == _JPEG:
            return self._jpeg(rect, buf, surface, control)
        if kind & 0x8:
            raise RemoteProtocolError(f"Tight: unsupported compression type {kind:#x}")
        return self._basic(rect, buf, surface, control)

    def _reset(self, control: int) -> None:
        # Resets are applied only once the whole rectangle is here (a retry must not redo them).
        for i in range(4):
            if control & (1 << i):
                self._streams[i] = zlib.decompressobj()

    def _jpeg(self, rect: Rect, buf: ReceiveBuffer, surface: Surface, control: int) -> bool:
        length = read_compact_length(buf)
        if length is None:
            return False
        data = buf.consume_exactly(length)
        if data is None:
            return False
        self._reset(control)
        surface.blit(rect.x, rect.y, rect.width, rect.height, decode_jpeg(data, rect))
        return True

    def _basic(self, rect: Rect, buf: ReceiveBuffer, surface: Surface, control: int) -> bool:
        filter_id = _FILTER_COPY
        if control & 0x40:
            b = buf.consume_exactly(1)
            if b is None:
                return False
            filter_id = b[0]
        w, h = rect.width, rect.height
        palette: list[bytes] = []
        if filter_id == _FILTER_PALETTE:
            b = buf.consume_exactly(1)
            if b is None:
                return False
            raw_palette = buf.consume_exactly((b[0] + 1) * TPIXEL)
            if raw_palette is None:
                return False
            converted = rgb_to_bgrx(raw_palette)
            palette = [converted[i : i + 4] for i in range(0, len(converted), 4)]
            bits = 1 if len(palette) == 2 else 8
            size = packed_row_bytes(w, bits) * h
        elif filter_id in (_FILTER_COPY, _FILTER_GRADIENT):
            size = w * h * TPIXEL
        else:
            raise RemoteProtocolError(f"Tight: unknown filter {filter_id}")
        data = self._payload(buf, size, control)
        if data is None:
            return False
        if filter_id == _FILTER_PALETTE:
            pixels = palette_lookup(unpack_indices(data, bits, w, h), palette)
        elif filter_id == _FILTER_GRADIENT:
            pixels = rgb_to_bgrx(ungradient(data, w, h))
        else:
            pixels = rgb_to_bgrx(data)
        if w and h:
            surface.blit(rect.x, rect.y, w, h, pixels)
        return True

    def _payload(self, buf: ReceiveBuffer, size: int, control: int) -> bytes | None:
        if size < _MIN_COMPRESSED:
            data = buf.consume_exactly(size)
            if data is not None:
                self._reset(control)
            return data
        length = read_compact_length(buf)
        if length is None:
            return None
        if length > size + size // 100 + 1024:
            raise RemoteProtocolError(f"Tight: compressed length {length} too large")
        compressed = buf.consume_exactly(length)
        if compressed is None:
            return None
        self._reset(control)
        stream = self._streams[(control >> 4) & 0x3]
        data = inflate_bounded(stream, compressed, size, "Tight")
        if len(data) != size:
            raise RemoteProtocolError(f"Tight: inflated {len(data)} bytes, expected {size}")
        return data


def decode_jpeg(data: bytes, rect: Rect) -> bytes:
    try:
        with warnings.catch_warnings():
            # A huge declared size is refused just below; Pillow's warning adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=["JPEG"])
        with img:
            # Checked from the header before any pixel is decoded (no decompression bomb).
            if img.size != (rect.width, rect.height):
                raise RemoteProtocolError(
                    f"Tight: JPEG is {img.size[0]}x{img.size[1]}, "
                    f"rectangle is {rect.width}x{rect.height}"
                )
            rgb = img.convert("RGB") if img.mode != "RGB" else img
            return rgb.tobytes("raw", "BGRX")
    except RemoteProtocolError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise RemoteProtocolError("Tight: undecodable JPEG data") from None


def ungradient(data: bytes, w: int, h: int) -> bytes:
    """Undo the gradient filter: each component is predicted as left + above - above-left."""
    out = bytearray(len(data))
    stride = w * TPIXEL
    for y in range(h):
        row = y * stride
        for x in range(w):
            for c in range(TPIXEL):
                i = row + x * TPIXEL + c
                left = out[i - TPIXEL] if x else 0
                up = out[i - stride] if y else 0
                up_left = out[i - stride - TPIXEL] if x and y else 0
                predicted = min(255, max(0, left + up - up_left))
                out[i] = (data[i] + predicted) & 0xFF
    return bytes(out)
