"""Few-colour images to PALETTE tiles (gateway.wire.display.palette has the layout).

The palette and index rows come from the C kernel gateway/display/palette_index.c when it is
built (gateway.display.compiled), else from numpy here (``numpy_index``): the same bytes either
way, which tests/display/test_palette_index.py checks.

Attacker-controlled: pixel content (whatever the desktop shows). Limits: images of up to
encoder.MAX_MERGE_PIXELS; a palette is given up on past MAX_COLORS colours (the caller falls back
to lossless WebP), so the work per image is one colour count, one table lookup per pixel and
one zlib pass.
"""

from __future__ import annotations

import io
import os
import zlib
from typing import Any

import numpy as np
from PIL import Image

from gateway.display.compiled import kernel
from gateway.wire.display import TileFormat
from gateway.wire.display import palette as wire_palette

MAX_COLORS = wire_palette.MAX_COLORS
ZLIB_LEVEL = 6
# Small tiles (a typed glyph's box) whose rows deflate saves at most STORED_SLACK bytes on go as
# stored deflate blocks (level 0): the viewer copies those synchronously instead of a
# DecompressionStream's several task hops (docs/PERFORMANCE.md, issue 11 part J).
STORED_MAX_ROWS = 1024
STORED_SLACK = 16
# Rows of at least WIDE_ROWS bytes (a scrolled view's new lines, 8-bit indices) deflate at
# WIDE_ZLIB_LEVEL: on the recorded GTK scroll, level 1 took deflating from 249 to 115 ms (about
# a twentieth of the workload's CPU) for 29 % more PALETTE bytes, which its bytes aim (0.09x
# noVNC's, aim ≤ 0.8x) can carry; the gateway's CPU aim cannot (docs/PERFORMANCE.md, part AH).
# Smaller rows (typing) keep ZLIB_LEVEL, where the bytes aims are tighter.
WIDE_ROWS = 24576
WIDE_ZLIB_LEVEL = 1


ROWS_PER_PASS = 16  # numpy temporaries stay near 16 bytes × width × this (0.5 MB at 1920)
HASH_BITS = 16  # the slot table has 2^16 one-byte entries (64 KiB, per call: thread-safe)
MULTIPLIER_TRIES = 32
# Odd 32-bit multipliers, the same in every process.
_MULTIPLIERS = tuple(np.random.default_rng(0x5A1E77E).integers(0, 2**31, MULTIPLIER_TRIES,
                                                               np.uint32) * 2 + 1)  # fmt: skip

#: The C kernel gateway/display/palette_index.c, or None; numpy_index is its reference.
_kernel: Any = kernel("palette_index")
#: The kernel's colour hash multiplier, random per process (the bytes out do not depend on it):
#: the desktop's pixels cannot aim at long probe runs they cannot see.
_KERNEL_MULTIPLIER = int.from_bytes(os.urandom(4), "little") | 1


def rgb_keys(rgb: np.ndarray) -> np.ndarray:
    """h×w×3 uint8 → h×w uint32 colour keys (0xRRGGBB)."""
    c = rgb.astype(np.uint32)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def encode(img: Image.Image, max_colors: int = MAX_COLORS, packed: bool = False
           ) -> bytes | None:
    """PALETTE tile data for an RGB image (PALETTE_PACKED's if ``packed``), or None if it has
    more than max_colors colours."""
    return _pack(index(img, max_colors), packed)


def encode_rgbx(rgbx: bytes, w: int, h: int, max_colors: int = MAX_COLORS,
                packed: bool = False) -> bytes | None:
    """``encode`` of a w×h image given as RGBX bytes (the fourth byte of each pixel unread)."""
    if _kernel is None:
        return encode(Image.frombytes("RGB", (w, h), rgbx, "raw", "RGBX"), max_colors, packed)
    return _pack(_kernel.index(rgbx, w, h, max_colors, _KERNEL_MULTIPLIER), packed)


def _pack(found: tuple[bytes, bytes] | None, packed: bool) -> bytes | None:
    if found is None:
        return None
    palette, rows = found
    if not packed:
        return wire_palette.pack(palette, rows, rows_level(rows))
    deltas = planar_deltas(palette)
    return wire_palette.pack_packed(palette, rows, rows_level(deltas + rows), deltas)


def planar_deltas(palette: bytes) -> bytes:
    """wire_palette.planar_deltas in numpy (the same bytes, tested), a few µs a palette."""
    rgb = np.frombuffer(palette, np.uint8).reshape(-1, 3).T
    out = np.empty_like(rgb)
    out[:, 0] = rgb[:, 0]
    np.subtract(rgb[:, 1:], rgb[:, :-1], out=out[:, 1:])  # uint8: mod 256
    return out.tobytes()


def index(img: Image.Image, max_colors: int = MAX_COLORS) -> tuple[bytes, bytes] | None:
    """(palette, packed index rows) of an RGB image, or None past ``max_colors`` colours (or
    for an empty image): the palette 3 bytes a colour, sorted by 0xRRGGBB; the rows as
    gateway.wire.display.palette lays them out."""
    if _kernel is None:
        return numpy_index(img, max_colors)
    w, h = img.size
    found: tuple[bytes, bytes] | None = _kernel.index(img.tobytes("raw", "RGBX"), w, h,
                                                      max_colors, _KERNEL_MULTIPLIER)
    return found


def numpy_index(img: Image.Image, max_colors: int = MAX_COLORS) -> tuple[bytes, bytes] | None:
    """index() without the C kernel, and its reference.

    Pillow counts the colours (a C pass that stops at max_colors); each pixel's 0xRRGGBB key
    (Pillow packs them as little-endian words) finds its palette slot through a collision-free
    multiplicative hash table (see slot_table), one gather for the whole image; a binary search
    in the sorted palette, a few rows at a time, where no such table was found."""
    if 0 in img.size:
        return None
    found = img.getcolors(max_colors)
    if found is None:
        return None
    colors = np.array(sorted((r << 16) | (g << 8) | b for _, (r, g, b) in found), np.uint32)
    w, h = img.size
    lookup = slot_table(colors)
    if lookup is not None:
        mul, table = lookup
        keys = np.frombuffer(img.tobytes("raw", "BGRX"), np.uint32).reshape(h, w)
        places = table[(keys * mul) >> np.uint32(32 - HASH_BITS)]
    else:
        places = search_index(img, colors)
    palette = np.empty((len(colors), 3), np.uint8)
    palette[:, 0], palette[:, 1], palette[:, 2] = colors >> 16, colors >> 8 & 0xFF, colors & 0xFF
    return palette.tobytes(), pack_rows(places, wire_palette.bits_for(len(colors)))


def rows_level(rows: bytes) -> int:
    """The zlib level for packed index rows: 0 (stored) for small rows that deflate saves at most
    STORED_SLACK bytes on (a stored stream is the rows + 11 bytes), WIDE_ZLIB_LEVEL from
    WIDE_ROWS bytes on, else ZLIB_LEVEL."""
    if len(rows) >= WIDE_ROWS:
        return WIDE_ZLIB_LEVEL
    if len(rows) > STORED_MAX_ROWS:
        return ZLIB_LEVEL
    saved = len(rows) + 11 - len(zlib.compress(rows, ZLIB_LEVEL))
    return 0 if saved <= STORED_SLACK else ZLIB_LEVEL


def search_index(img: Image.Image, colors: np.ndarray) -> np.ndarray:
    """Each pixel's slot in the sorted ``colors``, by binary search (the plain way)."""
    rgb = np.asarray(img, np.uint8)
    h, w = rgb.shape[:2]
    index = np.empty((h, w), np.uint8)
    for y in range(0, h, ROWS_PER_PASS):
        index[y : y + ROWS_PER_PASS] = np.searchsorted(colors, rgb_keys(rgb[y : y + ROWS_PER_PASS]))
    return index


def slot_table(colors: np.ndarray) -> tuple[np.uint32, np.ndarray] | None:
    """(multiplier, table) such that table[(key × multiplier mod 2^32) >> (32 − HASH_BITS)] is
    the slot of each of the sorted ``colors`` keys, or None if no multiplier tried separates
    them. The multipliers are one fixed sequence (same input, same bytes); with
    256 keys in 2^16 slots about every second one works, so MULTIPLIER_TRIES rarely all fail."""
    for mul in _MULTIPLIERS:
        slots = (colors * mul) >> np.uint32(32 - HASH_BITS)
        if np.unique(slots).size == slots.size:
            table = np.zeros(1 << HASH_BITS, np.uint8)
            table[slots] = np.arange(slots.size, dtype=np.uint8)
            return mul, table
    return None


def pack_rows(index: np.ndarray, bits: int) -> bytes:
    """h×w uint8 indices → rows of ``bits``-bit indices, MSB first, each row byte-padded."""
    if bits == 8:
        return index.tobytes()
    h, w = index.shape
    per = 8 // bits
    padded = np.zeros((h, -(-w // per) * per), np.uint8)
    padded[:, :w] = index
    groups = padded.reshape(h, -1, per)
    out = np.zeros(groups.shape[:2], np.uint8)
    for k in range(per):
        out |= groups[:, :, k] << (8 - bits * (k + 1))
    return out.tobytes()


def decode(w: int, h: int, data: bytes, packed: bool = False) -> np.ndarray:
    """h×w×3 uint8 pixels of PALETTE (PALETTE_PACKED if ``packed``) tile data, with the wire
    module's checks (PaletteError).

    The same result as gateway.wire.display.palette.unpack (unpack_packed), vectorised: for
    recordings, exports and tests that decode whole key frames."""
    if packed:
        colors, start = wire_palette.validate_packed(data), 1
        head = 3 * colors
    else:
        (colors, start), head = wire_palette.validate(data), 0
    bits = wire_palette.bits_for(colors)
    stride = wire_palette.row_bytes(w, bits)
    size = head + stride * h
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data[start:], size + 1)
    except zlib.error:
        raise wire_palette.PaletteError("palette tile's zlib stream is corrupt") from None
    if len(raw) != size or not inflater.eof or inflater.unconsumed_tail \
            or inflater.unused_data:
        raise wire_palette.PaletteError(f"palette tile inflates to other than {w}x{h} indices")
    palette_bytes = wire_palette.from_planar_deltas(raw[:head]) if packed \
        else data[1 : 1 + 3 * colors]
    rows = np.frombuffer(raw, np.uint8, stride * h, head).reshape(h, stride)
    if bits < 8:
        per = 8 // bits
        shifts = np.arange(8 - bits, -1, -bits, dtype=np.uint8)  # MSB first
        rows = ((rows[:, :, None] >> shifts) & ((1 << bits) - 1)).reshape(h, stride * per)
    index = rows[:, :w]
    if index.size and int(index.max()) >= colors:
        raise wire_palette.PaletteError(f"palette index {int(index.max())} of {colors} colours")
    palette = np.frombuffer(palette_bytes, np.uint8).reshape(colors, 3)
    return palette[index]


def tile_image(fmt: int, w: int, h: int, data: bytes) -> Image.Image:
    """Any tile's pixels as an RGB image (the viewer's job in the browser; recordings, tests)."""
    if fmt in (TileFormat.PALETTE, TileFormat.PALETTE_PACKED):
        return Image.fromarray(decode(w, h, data, fmt == TileFormat.PALETTE_PACKED), "RGB")
    return Image.open(io.BytesIO(data)).convert("RGB")
