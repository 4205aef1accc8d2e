"""ZRLE (16): | length u32 | zlib data |, inflating to 64×64 tiles, one zlib stream per
connection. Each tile: | subencoding u8 | ... | (raw, solid, packed palette, RLE, palette RLE).

Attacker-controlled: the length, the zlib data and every tile. Limits: the compressed length
and the inflated size are bounded by what the rectangle can need; runs stay inside the tile.
"""

from __future__ import annotations

import struct
import zlib

from ..buffer import ReceiveBuffer
from ..errors import RemoteProtocolError
from ..surface import Surface
from .base import DecodeContext, Rect
from .inflate import Reader, inflate_bounded
from .pixels import cpixels_to_bgrx, packed_row_bytes, palette_lookup, unpack_indices

TILE = 64
CPIXEL = 3
_WHAT = "ZRLE"


def max_inflated(width: int, height: int) -> int:
    """Largest legitimate inflated size: palette RLE's palette plus 4 bytes per pixel."""
    tiles = -(-width // TILE) * -(-height // TILE)
    return tiles * (1 + 127 * CPIXEL) + width * height * 4


class ZrleDecoder:
    draws_pixels = True

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj()

    def decode_rect(
        self, rect: Rect, buf: ReceiveBuffer, surface: Surface, ctx: DecodeContext
    ) -> bool:
        head = buf.consume_exactly(4)
        if head is None:
            return False
        (length,) = struct.unpack(">I", head)
        limit = max_inflated(rect.width, rect.height)
        # zlib never expands incompressible data by more than ~0.1% plus small overheads.
        if length > limit + limit // 100 + 1024:
            raise RemoteProtocolError(f"ZRLE length {length} too large for the rectangle")
        data = buf.consume_exactly(length)
        if data is None:
            return False
        reader = Reader(inflate_bounded(self._zlib, data, limit, _WHAT), _WHAT)
        for ty in range(rect.y, rect.y + rect.height, TILE):
            th = min(TILE, rect.y + rect.height - ty)
            for tx in range(rect.x, rect.x + rect.width, TILE):
                tw = min(TILE, rect.x + rect.width - tx)
                _decode_tile(reader, surface, tx, ty, tw, th)
        reader.finish()
        return True


def _read_palette(reader: Reader, size: int) -> list[bytes]:
    raw = cpixels_to_bgrx(reader.take(size * CPIXEL))
    return [raw[i : i + 4] for i in range(0, len(raw), 4)]


def _decode_tile(reader: Reader, surface: Surface, x: int, y: int, w: int, h: int) -> None:
    sub = reader.u8()
    n = w * h
    if sub == 0:
        surface.blit(x, y, w, h, cpixels_to_bgrx(reader.take(n * CPIXEL)))
    elif sub == 1:
        surface.fill(x, y, w, h, cpixels_to_bgrx(reader.take(CPIXEL)))
    elif 2 <= sub <= 16:
        palette = _read_palette(reader, sub)
        bits = 1 if sub == 2 else 2 if sub <= 4 else 4
        packed = reader.take(packed_row_bytes(w, bits) * h)
        surface.blit(x, y, w, h, palette_lookup(unpack_indices(packed, bits, w, h), palette))
    elif sub == 128:
        surface.blit(x, y, w, h, _plain_rle(reader, n))
    elif sub >= 130:
        palette = _read_palette(reader, sub - 128)
        surface.blit(x, y, w, h, _palette_rle(reader, n, palette))
    else:
        raise RemoteProtocolError(f"ZRLE: invalid tile subencoding {sub}")


def _plain_rle(reader: Reader, n: int) -> bytes:
    runs: list[bytes] = []
    done = 0
    while done < n:
        pixel = cpixels_to_bgrx(reader.take(CPIXEL))
        length = reader.run_length(n - done)
        runs.append(pixel * length)
        done += length
    return b"".join(runs)


def _palette_rle(reader: Reader, n: int, palette: list[bytes]) -> bytes:
    runs: list[bytes] = []
    done = 0
    while done < n:
        index = reader.u8()
        length = reader.run_length(n - done) if index & 0x80 else 1
        index &= 0x7F
        if index >= len(palette):
            raise RemoteProtocolError(f"ZRLE: palette index {index} out of range")
        runs.append(palette[index] * length)
        done += length
    return b"".join(runs)
