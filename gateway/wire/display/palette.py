"""The PALETTE tile format (TileFormat.PALETTE): a few-colour image as a palette + zlib indices.

Attacker-controlled: the tile data handed to ``unpack`` (a viewer, player or test decoding the
gateway's stream treats it as hostile). Limits: 1..256 colours; the zlib stream must inflate to
exactly ``h`` rows of ``row_bytes(w, bits)`` bytes — inflating stops one byte past that, so a zlib
bomb costs at most w×h+1 bytes; every index must be below the colour count.

Text, menus and watermarked text are a handful of colours per box: Tight's idea (palette +
zlib) costs a fraction of lossless WebP there, and encodes an order of magnitude faster.

Layout of the tile data (after the Tile header)::

    | colors-1 u8 | palette: colors × (r u8 | g u8 | b u8) | zlib stream (RFC 1950) |

The stream inflates to ``h`` rows; each row holds ``w`` indices of ``bits`` bits (1 for ≤ 2
colours, 2 for ≤ 4, 4 for ≤ 16, else 8), packed most significant bit first, the row padded to a
whole byte (as PNG packs its indexed rows). Pure standard library.
"""

from __future__ import annotations

import zlib
from typing import Final

__all__ = ["MAX_COLORS", "PaletteError", "bits_for", "pack", "row_bytes", "unpack", "validate"]

MAX_COLORS: Final = 256


class PaletteError(ValueError):
    """Palette tile data that breaks the layout above (the caller maps it to its own error)."""


def bits_for(colors: int) -> int:
    """Bits per index for a palette of ``colors`` entries."""
    return 1 if colors <= 2 else 2 if colors <= 4 else 4 if colors <= 16 else 8


def row_bytes(w: int, bits: int) -> int:
    return (w * bits + 7) // 8


def pack(palette: bytes, rows: bytes, level: int = 6) -> bytes:
    """Tile data from an RGB palette (3 bytes a colour) and the already packed index rows."""
    colors = len(palette) // 3
    if not 1 <= colors <= MAX_COLORS or len(palette) != 3 * colors:
        raise ValueError(f"palette of {len(palette)} bytes")
    return bytes((colors - 1,)) + palette + zlib.compress(rows, level)


def validate(data: bytes) -> tuple[int, int]:
    """Cheap header check (no inflating): returns (colours, offset of the zlib stream)."""
    if not data:
        raise PaletteError("empty palette tile")
    colors = data[0] + 1
    start = 1 + 3 * colors
    # A zlib stream is at least a 2-byte header (deflate, a valid check value) and a checksum.
    if len(data) < start + 6:
        raise PaletteError("palette tile shorter than its palette")
    cmf, flg = data[start], data[start + 1]
    if cmf & 0x0F != 8 or (cmf << 8 | flg) % 31:
        raise PaletteError("palette tile has no zlib stream")
    return colors, start


def unpack(w: int, h: int, data: bytes) -> bytes:
    """Decode to w×h RGB bytes; raises PaletteError on any deviation from the layout."""
    colors, start = validate(data)
    bits = bits_for(colors)
    stride = row_bytes(w, bits)
    size = stride * h
    inflater = zlib.decompressobj()
    try:
        rows = inflater.decompress(data[start:], size + 1)
    except zlib.error:
        raise PaletteError("palette tile's zlib stream is corrupt") from None
    if len(rows) != size or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise PaletteError(f"palette tile inflates to other than {w}x{h} indices")
    palette = data[1:start]
    out = bytearray(w * h * 3)
    per, mask = 8 // bits, (1 << bits) - 1
    for y in range(h):
        row = rows[y * stride : (y + 1) * stride]
        for x in range(w):
            i = row[x // per] >> (8 - bits - (x % per) * bits) & mask if bits < 8 else row[x]
            if i >= colors:
                raise PaletteError(f"palette index {i} of {colors} colours")
            o = (y * w + x) * 3
            out[o : o + 3] = palette[3 * i : 3 * i + 3]
    return bytes(out)
