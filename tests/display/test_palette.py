"""PALETTE tiles: encode -> decode round trips (numpy and the pure wire decoder agree), the
encoder's choice of format, and hostile tile data (bad indices, zlib bombs, junk, lies)."""

from __future__ import annotations

import random
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gateway.display import palette
from gateway.wire import display as w
from gateway.wire.display import palette as wp


def image(w_: int, h: int, colors: int, seed: int = 0) -> Image.Image:
    rng = random.Random(seed)
    inks = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(colors)]
    px = bytes(b for _ in range(w_ * h) for b in rng.choice(inks))
    return Image.frombytes("RGB", (w_, h), px)


@pytest.mark.parametrize("colors", [1, 2, 3, 4, 5, 16, 17, 200, 256])
@pytest.mark.parametrize(("w_", "h"), [(1, 1), (7, 3), (16, 18), (64, 64), (333, 5)])
def test_round_trip_every_index_width(colors: int, w_: int, h: int) -> None:
    img = image(w_, h, colors, seed=colors * w_ + h)
    data = palette.encode(img)
    assert data is not None
    n = data[0] + 1
    assert n == len(img.getcolors(256))  # only the colours present
    assert palette.decode(w_, h, data).tobytes() == img.tobytes()
    assert wp.unpack(w_, h, data) == img.tobytes()  # the pure decoder agrees


def test_index_rows_are_packed_msb_first_and_padded() -> None:
    img = Image.frombytes("RGB", (3, 2), bytes([0, 0, 0, 255, 255, 255] * 3))
    data = palette.encode(img)
    assert data is not None and data[0] == 1  # two colours: 1 bit per index
    assert data[1:7] == bytes([0, 0, 0, 255, 255, 255])  # sorted palette
    assert zlib.decompress(data[7:]) == bytes([0b01000000, 0b10100000])  # rows 010, 101


def test_more_colours_than_allowed_is_none() -> None:
    assert palette.encode(image(32, 32, 40), max_colors=16) is None
    assert palette.encode(image(40, 40, 300)) is None


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.integers(1, 256), st.integers(0, 2**16))
def test_round_trip_property(w_: int, h: int, colors: int, seed: int) -> None:
    img = image(w_, h, min(colors, w_ * h), seed)
    data = palette.encode(img)
    assert data is not None
    assert palette.decode(w_, h, data).tobytes() == img.tobytes() == wp.unpack(w_, h, data)


# --- hostile tile data ----------------------------------------------------------------------

def raw_tile(colors: int, rows: bytes, extra: bytes = b"") -> bytes:
    pal = bytes(range(3 * colors))
    return bytes((colors - 1,)) + pal + zlib.compress(rows) + extra


def both_refuse(w_: int, h: int, data: bytes, match: str) -> None:
    with pytest.raises(wp.PaletteError, match=match):
        wp.unpack(w_, h, data)
    with pytest.raises(wp.PaletteError, match=match):
        palette.decode(w_, h, data)


def test_index_past_the_palette_is_refused() -> None:
    # 3 colours take 2-bit indices; index 3 names no colour.
    both_refuse(4, 1, raw_tile(3, bytes([0b00011011])), "palette index 3 of 3")
    both_refuse(2, 1, raw_tile(17, bytes([0, 17])), "palette index 17 of 17")


def test_padding_bits_are_not_indices() -> None:
    # A 3-wide row of 2-bit indices: the last 2 bits are padding and may hold anything.
    assert wp.unpack(3, 1, raw_tile(3, bytes([0b00011011]))) == bytes(range(9))


def test_zlib_bomb_is_cut_off_at_the_tile_size() -> None:
    bomb = raw_tile(2, bytes(64 * 1024 * 1024))  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 100_000
    both_refuse(64, 64, bomb, "inflates to other than 64x64")


def test_short_stream_junk_and_corruption_are_refused() -> None:
    both_refuse(8, 2, raw_tile(2, b"\x00"), "inflates to other than")
    both_refuse(8, 1, raw_tile(2, b"\x00", extra=b"junk"), "inflates to other than")
    data = bytearray(raw_tile(2, bytes(20)))  # 10 rows of 2 bytes
    data[-3] ^= 0xFF  # the Adler-32 checksum
    both_refuse(10, 10, bytes(data), "corrupt")


@pytest.mark.parametrize(("data", "match"), [
    (b"", "empty"),
    (b"\x01" + bytes(6) + b"\x78\x9c", "shorter than its palette"),
    (b"\x00" + bytes(3) + b"\x00\x00" + bytes(6), "no zlib stream"),
    (b"\xff" + bytes(3 * 255), "shorter than its palette"),
])
def test_bad_headers_are_protocol_errors_on_the_wire(data: bytes, match: str) -> None:
    with pytest.raises(wp.PaletteError, match=match):
        wp.validate(data)
    msg = w.encode_tile(w.Tile(0, 0, 4, 4, w.TileFormat.PALETTE, b"\x00" * 3)) if not data else \
        w.encode_tile(w.Tile(0, 0, 4, 4, w.TileFormat.PALETTE, data))
    with pytest.raises(w.ProtocolError):
        w.decode_all(msg, w.Direction.TO_VIEWER)


def test_a_palette_tile_crosses_the_wire() -> None:
    img = image(20, 10, 5)
    tile = w.Tile(3, 4, 20, 10, w.TileFormat.PALETTE, palette.encode(img) or b"")
    assert w.decode_all(w.encode(tile), w.Direction.TO_VIEWER) == [tile]
    assert palette.tile_image(tile.format, 20, 10, tile.data).tobytes() == img.tobytes()


def test_decode_returns_exact_array_shape() -> None:
    img = image(9, 4, 4)
    out = palette.decode(9, 4, palette.encode(img) or b"")
    assert out.shape == (4, 9, 3) and out.dtype == np.uint8


def test_small_tiles_go_as_stored_blocks_large_ones_deflated() -> None:
    glyph = image(8, 16, 4, seed=3)  # a typed glyph's box: 32 bytes of 2-bit rows
    data = palette.encode(glyph)
    assert data is not None
    start = 1 + 3 * (data[0] + 1)
    assert data[start + 2] & 0x06 == 0  # the first (and only) deflate block is stored
    assert len(data) - start == 32 + 11
    assert palette.decode(8, 16, data).tobytes() == glyph.tobytes() == wp.unpack(8, 16, data)
    # Rows that deflate shrinks well stay deflated, whatever their size.
    flat = Image.new("RGB", (64, 16), (1, 2, 3))
    flat.putpixel((5, 5), (9, 9, 9))
    data = palette.encode(flat)
    assert data is not None and data[1 + 6 + 2] & 0x06 != 0
    assert palette.decode(64, 16, data).tobytes() == flat.tobytes()
    # Past STORED_MAX_ROWS the level is ZLIB_LEVEL, even for noise (zlib may still store it),
    # and from WIDE_ROWS (a scrolled view's new lines) WIDE_ZLIB_LEVEL.
    noise = random.Random(4).randbytes(palette.WIDE_ROWS)
    assert palette.rows_level(noise[: palette.STORED_MAX_ROWS + 1]) == 6
    assert palette.rows_level(noise[:-1]) == 6
    assert palette.rows_level(noise) == palette.WIDE_ZLIB_LEVEL == 1


def test_a_scrolled_views_new_lines_deflate_fast_and_decode_the_same() -> None:
    """A 1920×13 line of 120 colours (8-bit rows past WIDE_ROWS) goes at WIDE_ZLIB_LEVEL; the
    viewer's decoder does not care which level made the stream."""
    rng = random.Random(6)
    colors = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(120)]
    line = Image.new("RGB", (1920, 13))
    line.putdata([colors[min(119, (i // 7) % 150)] for i in range(1920 * 13)])
    data = palette.encode(line, 256)
    assert data is not None
    start = 1 + 3 * (data[0] + 1)
    assert data[start + 1] >> 6 == 0  # zlib's header: FLEVEL 0, the fastest levels
    assert palette.decode(1920, 13, data).tobytes() == line.tobytes() == wp.unpack(1920, 13, data)


def test_rows_level_saves_at_most_the_slack() -> None:
    rng = random.Random(5)
    for n in range(1, palette.STORED_MAX_ROWS + 1, 37):
        rows = bytes(rng.randrange(4) for _ in range(n))
        level = palette.rows_level(rows)
        stored, packed = len(zlib.compress(rows, 0)), len(zlib.compress(rows, palette.ZLIB_LEVEL))
        assert level in (0, palette.ZLIB_LEVEL)
        assert (level == 0) == (stored - packed <= palette.STORED_SLACK)


P, PP, WEBP = w.TileFormat.PALETTE, w.TileFormat.PALETTE_PACKED, w.TileFormat.WEBP


@pytest.mark.parametrize(("size", "colors", "fmt", "packed_fmt"), [
    ((1920, 13), 120, P, PP),  # a wide new line of antialiased text
    ((64, 64), 256, P, PP),  # just at PALETTE_WIDE_PIXELS, 256 colours
    ((384, 64), 300, WEBP, WEBP),  # past 8-bit indices
    ((63, 64), 17, WEBP, PP),  # one column short: small boxes keep 16 colours, unless packed
    ((16, 18), 16, P, PP),  # a typed glyph's box
    ((16, 18), 40, WEBP, PP),  # an antialiased glyph under the watermark's ink
])
@pytest.mark.parametrize("packed", [False, True])
def test_large_text_images_may_use_256_colours_small_ones_16(
        size: tuple[int, int], colors: int, fmt: w.TileFormat, packed_fmt: w.TileFormat,
        packed: bool) -> None:
    """The encoder's choice by size (encoder.PALETTE_WIDE_PIXELS) for a version-3 viewer; a
    version-4 one takes PALETTE_PACKED for up to 256 colours at any size. Exact pixels."""
    from gateway.display import encoder

    assert encoder.PALETTE_WIDE_PIXELS == 64 * 64
    img = image(*size, colors, seed=colors)
    assert len(img.getcolors(1 << 16)) == colors
    snap = encoder.RegionSnapshot(0, 0, *size, img.tobytes("raw", "BGRX"), 64)
    fmt = packed_fmt if packed else fmt
    tiles = encoder.encode_tiles([snap], None,
                                 encoder.EncodeSettings(lossy=False, packed_palette=packed))
    assert {t.format for t in tiles} == {fmt}  # type: ignore[union-attr]
    canvas = Image.new("RGB", size)
    for t in tiles:
        canvas.paste(palette.tile_image(t.format, t.w, t.h, t.data), (t.x, t.y))  # type: ignore[union-attr]
    assert canvas.tobytes() == img.tobytes()
