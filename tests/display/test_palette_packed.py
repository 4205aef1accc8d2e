"""PALETTE_PACKED tiles (wire version 4): the palette travels inside the zlib stream as planar
deltas. Round trips (the numpy and pure decoders agree, the numpy deltas equal the pure ones),
what it buys on an antialiased glyph, and hostile tile data (bad indices, zlib bombs, junk)."""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from gateway.display import palette
from gateway.wire import display as w
from gateway.wire.display import palette as wp
from tests.display.test_palette import image

PP = w.TileFormat.PALETTE_PACKED


@pytest.mark.parametrize("colors", [1, 2, 3, 5, 16, 17, 200, 256])
@pytest.mark.parametrize(("w_", "h"), [(1, 1), (7, 3), (16, 18), (333, 5)])
def test_round_trip_every_index_width(colors: int, w_: int, h: int) -> None:
    img = image(w_, h, colors, seed=colors * w_ + h)
    data = palette.encode(img, packed=True)
    assert data is not None and data[0] + 1 == len(img.getcolors(256))
    assert palette.decode(w_, h, data, packed=True).tobytes() == img.tobytes()
    assert wp.unpack_packed(w_, h, data) == img.tobytes()  # the pure decoder agrees


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=3, max_size=768).map(lambda b: b[: len(b) // 3 * 3]))
def test_numpy_deltas_are_the_wire_modules_and_undo(pal: bytes) -> None:
    assert palette.planar_deltas(pal) == wp.planar_deltas(pal)
    assert wp.from_planar_deltas(wp.planar_deltas(pal)) == pal


def test_the_layout_is_planar_deltas_then_rows() -> None:
    img = Image.frombytes("RGB", (3, 1), bytes([10, 20, 30, 12, 20, 25, 255, 0, 1]))
    data = palette.encode(img, packed=True)
    assert data is not None and data[0] == 2  # three colours, sorted by 0xRRGGBB
    body = zlib.decompress(data[1:])
    # reds 10, 12, 255; greens 20, 20, 0; blues 30, 25, 1: each minus the one before, mod 256
    assert body[:9] == bytes([10, 2, 243, 20, 0, 236, 30, 251, 232])
    assert body[9:] == bytes([0b00011000])  # 2-bit indices 0, 1, 2, padded


def test_an_antialiased_glyph_box_costs_less_than_with_its_palette_raw() -> None:
    """The reason for the format: a typed glyph's box has tens of greys, 3 bytes each raw."""
    img = Image.new("RGB", (40, 22), (255, 255, 255))
    ImageDraw.Draw(img).text((2, 2), "Ag", fill=(0, 0, 0))
    img = img.resize((40, 22), Image.LANCZOS)  # greys along every edge
    assert len(img.getcolors(256)) > 16
    raw, packed = palette.encode(img), palette.encode(img, packed=True)
    assert raw is not None and packed is not None
    assert len(packed) < len(raw)


def test_the_encoder_sends_packed_tiles_that_cross_the_wire() -> None:
    img = image(20, 10, 40)
    tile = w.Tile(3, 4, 20, 10, PP, palette.encode(img, packed=True) or b"")
    assert w.decode_all(w.encode(tile), w.Direction.TO_VIEWER) == [tile]
    assert palette.tile_image(PP, 20, 10, tile.data).tobytes() == img.tobytes()


# --- hostile tile data ----------------------------------------------------------------------

def packed_tile(colors: int, body: bytes, extra: bytes = b"") -> bytes:
    return bytes((colors - 1,)) + zlib.compress(body) + extra


def both_refuse(w_: int, h: int, data: bytes, match: str) -> None:
    with pytest.raises(wp.PaletteError, match=match):
        wp.unpack_packed(w_, h, data)
    with pytest.raises(wp.PaletteError, match=match):
        palette.decode(w_, h, data, packed=True)


def test_index_past_the_palette_is_refused() -> None:
    both_refuse(4, 1, packed_tile(3, bytes(9) + bytes([0b00011011])), "palette index 3 of 3")


def test_a_stream_that_is_only_the_palette_or_more_is_refused() -> None:
    both_refuse(4, 1, packed_tile(3, bytes(9)), "inflates to other than")  # no rows
    both_refuse(4, 1, packed_tile(3, bytes(11)), "inflates to other than")  # a byte too many
    both_refuse(4, 1, packed_tile(3, bytes(10), extra=b"junk"), "inflates to other than")


def test_zlib_bomb_is_cut_off_at_the_tile_size() -> None:
    bomb = packed_tile(2, bytes(64 * 1024 * 1024))
    assert len(bomb) < 100_000
    both_refuse(64, 64, bomb, "inflates to other than 64x64")


def test_corruption_is_refused() -> None:
    data = bytearray(packed_tile(2, bytes(6 + 20)))
    data[-2] ^= 0xFF  # the Adler-32 checksum
    both_refuse(10, 10, bytes(data), "corrupt")


@pytest.mark.parametrize(("data", "match"), [
    (b"", "shorter than a zlib stream"),
    (b"\x01\x78\x9c\x00", "shorter than a zlib stream"),
    (b"\x00" + bytes(8), "no zlib stream"),
])
def test_bad_headers_are_protocol_errors_on_the_wire(data: bytes, match: str) -> None:
    with pytest.raises(wp.PaletteError, match=match):
        wp.validate_packed(data)
    on_wire = data or b"\x00" * 3  # the encoder refuses an empty image; three bytes are short
    with pytest.raises(w.ProtocolError):
        w.decode_all(w.encode_tile(w.Tile(0, 0, 4, 4, PP, on_wire)), w.Direction.TO_VIEWER)


def test_random_bytes_never_escape_as_anything_but_palette_errors() -> None:
    rng = random.Random(7)
    for _ in range(300):
        data = bytes((rng.randrange(256),)) + zlib.compress(
            bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))))
        try:
            out = wp.unpack_packed(4, 3, data)
        except wp.PaletteError:
            continue
        assert len(out) == 4 * 3 * 3
