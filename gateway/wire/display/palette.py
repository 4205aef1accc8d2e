"""The PALETTE tile formats (TileFormat.PALETTE, PALETTE_PACKED): a few-colour image as a
palette + zlib indices.

Attacker-controlled: the tile data handed to ``unpack`` and ``unpack_packed`` (a viewer, player
or test decoding the gateway's stream treats it as hostile). Limits: 1..256 colours; the zlib
stream must inflate to exactly ``h`` rows of ``row_bytes(w, bits)`` bytes (after the 3 × colors
palette bytes, packed) — inflating stops one byte past that, so a zlib bomb costs at most
w×h + 769 bytes; every index must be below the colour count.

Text, menus and watermarked text are a handful of colours per box: Tight's idea (palette +
zlib) costs a fraction of lossless WebP there, and encodes an order of magnitude faster.

Layout of the tile data (after the Tile header)::

    | colors-1 u8 | palette: colors × (r u8 | g u8 | b u8) | zlib stream (RFC 1950) |

The stream inflates to ``h`` rows; each row holds ``w`` indices of ``bits`` bits (1 for ≤ 2
colours, 2 for ≤ 4, 4 for ≤ 16, else 8), packed most significant bit first, the row padded to a
whole byte (as PNG packs its indexed rows).

TileFormat.PALETTE_PACKED (version ≥ 4) carries the palette inside the zlib stream::

    | colors-1 u8 | zlib stream (RFC 1950) |

The stream inflates to 3 × colors palette bytes, then the rows as above. The palette goes
planar, as deltas: every colour's red minus the red before it (mod 256; the first against 0),
then the greens, then the blues. The palette is sorted by 0xRRGGBB, so an antialiased glyph's
greys are runs of small equal steps that deflate to a few bytes. Raw, a box's 41 colours were
123 bytes before any index, and kept small antialiased boxes on lossless WebP (docs/
PERFORMANCE.md, issue 11 part AT). Pure standard library.
"""

from __future__ import annotations

import zlib
from typing import Final

__all__ = ["MAX_COLORS", "PaletteError", "bits_for", "from_planar_deltas", "pack", "pack_packed",
           "planar_deltas", "row_bytes", "unpack", "unpack_packed", "validate", "validate_packed"]

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


def planar_deltas(palette: bytes) -> bytes:
    """An RGB palette (3 bytes a colour) as PALETTE_PACKED carries it: per channel, each value
    minus the one before it, mod 256."""
    out = bytearray()
    for channel in range(3):
        values = palette[channel::3]
        out += bytes((v - p) & 0xFF for v, p in zip(values, b"\0" + values[:-1], strict=True))
    return bytes(out)


def from_planar_deltas(deltas: bytes) -> bytes:
    """planar_deltas undone: the RGB palette."""
    n = len(deltas) // 3
    planes = []
    for channel in range(3):
        value, plane = 0, bytearray(n)
        for i, d in enumerate(deltas[channel * n : (channel + 1) * n]):
            value = (value + d) & 0xFF
            plane[i] = value
        planes.append(plane)
    return bytes(b for rgb in zip(*planes, strict=True) for b in rgb)


def pack_packed(palette: bytes, rows: bytes, level: int = 6, deltas: bytes | None = None
                ) -> bytes:
    """PALETTE_PACKED tile data from an RGB palette and the already packed index rows.
    ``deltas``: planar_deltas(palette), if the caller has it already (the gateway's encoder
    takes it from numpy, several times faster than the loop here)."""
    colors = len(palette) // 3
    if not 1 <= colors <= MAX_COLORS or len(palette) != 3 * colors:
        raise ValueError(f"palette of {len(palette)} bytes")
    body = (planar_deltas(palette) if deltas is None else deltas) + rows
    return bytes((colors - 1,)) + zlib.compress(body, level)


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


def validate_packed(data: bytes) -> int:
    """validate for PALETTE_PACKED: returns the colour count (the zlib stream starts at 1)."""
    if len(data) < 7:
        raise PaletteError("packed palette tile shorter than a zlib stream")
    cmf, flg = data[1], data[2]
    if cmf & 0x0F != 8 or (cmf << 8 | flg) % 31:
        raise PaletteError("palette tile has no zlib stream")
    return data[0] + 1


def _inflate(stream: bytes, size: int, w: int, h: int) -> bytes:
    """Exactly ``size`` bytes from a zlib stream that must end there (inflating stops one byte
    past it, so a zlib bomb costs at most size + 1 bytes)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(stream, size + 1)
    except zlib.error:
        raise PaletteError("palette tile's zlib stream is corrupt") from None
    if len(out) != size or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise PaletteError(f"palette tile inflates to other than {w}x{h} indices")
    return out


def unpack(w: int, h: int, data: bytes) -> bytes:
    """Decode to w×h RGB bytes; raises PaletteError on any deviation from the layout."""
    colors, start = validate(data)
    rows = _inflate(data[start:], row_bytes(w, bits_for(colors)) * h, w, h)
    return _paint(w, h, data[1:start], colors, rows)


def unpack_packed(w: int, h: int, data: bytes) -> bytes:
    """unpack for PALETTE_PACKED."""
    colors = validate_packed(data)
    body = _inflate(data[1:], 3 * colors + row_bytes(w, bits_for(colors)) * h, w, h)
    return _paint(w, h, from_planar_deltas(body[: 3 * colors]), colors, body[3 * colors :])


def _paint(w: int, h: int, palette: bytes, colors: int, rows: bytes) -> bytes:
    bits = bits_for(colors)
    stride = row_bytes(w, bits)
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
