"""Pixel conversions shared by ZRLE and Tight, done with slicing and ``bytes.translate``.

Pure Python cannot afford a loop per pixel at 1920×1080, so every conversion here works on
whole byte strings: C-speed stride copies and 256-entry lookup tables.
"""

from __future__ import annotations

from functools import cache


def cpixels_to_bgrx(data: bytes) -> bytes:
    """ZRLE CPIXELs (the 3 low bytes of a little-endian BGRX pixel: B, G, R) → BGRX."""
    n = len(data) // 3
    out = bytearray(n * 4)
    out[0::4] = data[0::3]
    out[1::4] = data[1::3]
    out[2::4] = data[2::3]
    return bytes(out)


def rgb_to_bgrx(data: bytes) -> bytes:
    """Tight TPIXELs (R, G, B bytes) → BGRX."""
    n = len(data) // 3
    out = bytearray(n * 4)
    out[0::4] = data[2::3]
    out[1::4] = data[1::3]
    out[2::4] = data[0::3]
    return bytes(out)


def palette_lookup(indices: bytes, palette: list[bytes]) -> bytes:
    """Indices (one byte each) → BGRX through a palette of BGRX pixels; unknown → black."""
    blue = bytearray(256)
    green = bytearray(256)
    red = bytearray(256)
    for i, px in enumerate(palette[:256]):
        blue[i], green[i], red[i] = px[0], px[1], px[2]
    out = bytearray(len(indices) * 4)
    out[0::4] = indices.translate(blue)
    out[1::4] = indices.translate(green)
    out[2::4] = indices.translate(red)
    return bytes(out)


@cache
def _unpack_table(bits: int) -> tuple[bytes, ...]:
    """For each byte value, its 8/bits indices, most significant first."""
    per = 8 // bits
    mask = (1 << bits) - 1
    return tuple(
        bytes((value >> (8 - bits * (k + 1))) & mask for k in range(per)) for value in range(256)
    )


def unpack_indices(data: bytes, bits: int, width: int, height: int) -> bytes:
    """Bit-packed palette indices, each row padded to a whole byte → one byte per pixel."""
    if bits == 8:
        return data[: width * height]
    table = _unpack_table(bits)
    expanded = b"".join(map(table.__getitem__, data))
    row_bytes = (width * bits + 7) // 8
    padded_width = row_bytes * (8 // bits)
    if padded_width == width:
        return expanded[: width * height]
    return b"".join(expanded[r * padded_width : r * padded_width + width] for r in range(height))


def packed_row_bytes(width: int, bits: int) -> int:
    return (width * bits + 7) // 8
