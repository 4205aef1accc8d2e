"""ZRLE: every tile subencoding, tile order, the shared zlib stream and hostile data."""

from __future__ import annotations

import struct
import zlib

import pytest

from gateway.rfb.encodings import Encoding
from gateway.rfb.errors import RemoteProtocolError
from gateway.rfb.events import UpdateDone

from .helpers import connected, drain, feed_all_ways, rect, update
from .memsurface import MemorySurface

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)
COLOURS = [RED, GREEN, BLUE, WHITE, BLACK]


def cpix(c: tuple[int, int, int]) -> bytes:
    return bytes((c[2], c[1], c[0]))


def zrle(x: int, y: int, w: int, h: int, tiles: bytes, comp: zlib._Compress | None = None) -> bytes:
    comp = comp or zlib.compressobj()
    data = comp.compress(tiles) + comp.flush(zlib.Z_SYNC_FLUSH)
    return rect(x, y, w, h, Encoding.ZRLE, struct.pack(">I", len(data)) + data)


def run_length(n: int) -> bytes:
    n -= 1
    return b"\xff" * (n // 255) + bytes([n % 255])


def pattern(w: int, h: int, ncolours: int) -> list[tuple[int, int, int]]:
    return [COLOURS[(i * 7 + i // w) % ncolours] for i in range(w * h)]


def pack(indices: list[int], w: int, bits: int) -> bytes:
    out = bytearray()
    for row in range(len(indices) // w):
        acc, nbits = 0, 0
        for i in indices[row * w : (row + 1) * w]:
            acc, nbits = (acc << bits) | i, nbits + bits
            if nbits == 8:
                out.append(acc)
                acc, nbits = 0, 0
        if nbits:
            out.append(acc << (8 - nbits))
    return bytes(out)


def tile_for(kind: str, pixels: list[tuple[int, int, int]], w: int) -> bytes:
    palette = list(dict.fromkeys(pixels))
    idx = [palette.index(p) for p in pixels]
    if kind == "raw":
        return b"\x00" + b"".join(map(cpix, pixels))
    if kind == "packed":
        bits = 1 if len(palette) == 2 else 2 if len(palette) <= 4 else 4
        return bytes([len(palette)]) + b"".join(map(cpix, palette)) + pack(idx, w, bits)
    runs: list[tuple[int, int]] = []
    for p in pixels:
        if runs and runs[-1][0] == p:
            runs[-1] = (p, runs[-1][1] + 1)
        else:
            runs.append((p, 1))
    if kind == "rle":
        return b"\x80" + b"".join(cpix(p) + run_length(n) for p, n in runs)
    body = b"".join(
        bytes([palette.index(p)]) if n == 1 else bytes([palette.index(p) | 0x80]) + run_length(n)
        for p, n in runs
    )
    return bytes([128 + len(palette)]) + b"".join(map(cpix, palette)) + body


def surface_colours(
    surface: MemorySurface, x: int, y: int, w: int, h: int
) -> list[tuple[int, int, int]]:
    return [surface.rgb(x + i % w, y + i // w) for i in range(w * h)]


@pytest.mark.parametrize("ncolours", [2, 3, 5])
@pytest.mark.parametrize("kind", ["raw", "packed", "rle", "palette_rle"])
def test_zrle_tile_subencodings(kind: str, ncolours: int) -> None:
    w, h = 13, 5  # odd width: packed rows are padded
    pixels = pattern(w, h, ncolours)
    events, surface = feed_all_ways(connected, update(zrle(3, 4, w, h, tile_for(kind, pixels, w))))
    assert events == [UpdateDone(1)]
    assert surface_colours(surface, 3, 4, w, h) == pixels


def test_zrle_long_runs_and_solid_tiles_in_tile_order() -> None:
    # 70x66 = four tiles: 64x64, 6x64, 64x2, 6x2, left to right then top to bottom.
    tiles = b"\x01" + cpix(RED) + b"\x01" + cpix(GREEN)
    tiles += b"\x80" + cpix(BLUE) + run_length(128)  # 64x2 in one run (> 255 encodings)
    tiles += b"\x01" + cpix(WHITE)
    _, surface = feed_all_ways(lambda: connected(128, 128), update(zrle(0, 0, 70, 66, tiles)))
    assert surface.rgb(63, 63) == RED
    assert surface.rgb(64, 0) == GREEN
    assert surface.rgb(0, 65) == BLUE and surface.rgb(63, 64) == BLUE
    assert surface.rgb(69, 65) == WHITE


def test_zrle_stream_persists_across_rects() -> None:
    comp = zlib.compressobj()
    tile = b"\x01" + cpix(GREEN)
    data = update(zrle(0, 0, 4, 4, tile, comp), zrle(4, 0, 4, 4, tile, comp))
    events, surface = feed_all_ways(connected, data)
    assert events == [UpdateDone(2)]
    assert surface.rgb(7, 3) == GREEN


@pytest.mark.parametrize(
    "tiles,reason",
    [
        (b"\x11", "invalid tile subencoding 17"),
        (b"\x81", "invalid tile subencoding 129"),
        (b"\x80" + cpix(RED) + run_length(17), "run goes past the tile"),
        (b"\x82" + cpix(RED) + cpix(RED) + b"\x05", "palette index 5 out of range"),
        (b"\x01" + cpix(RED) + b"\x00", "1 bytes left over"),
        (b"\x00" + cpix(RED), "data ends inside a tile"),
    ],
)
def test_zrle_rejects_bad_tiles(tiles: bytes, reason: str) -> None:
    client, _ = connected()
    client.feed(update(zrle(0, 0, 4, 4, tiles)))
    with pytest.raises(RemoteProtocolError, match=reason):
        drain(client)


def test_zrle_rejects_zlib_bomb_without_inflating_it() -> None:
    bomb = zlib.compress(bytes(50_000_000), 9)  # ~50 KB that would inflate to 50 MB
    client, _ = connected()
    client.feed(update(rect(0, 0, 4, 4, Encoding.ZRLE, struct.pack(">I", len(bomb)) + bomb)))
    with pytest.raises(RemoteProtocolError, match="too large for the rectangle"):
        drain(client)
    small_bomb = zlib.compress(bytes(100_000), 9)
    client, _ = connected()
    client.feed(
        update(rect(0, 0, 4, 4, Encoding.ZRLE, struct.pack(">I", len(small_bomb)) + small_bomb))
    )
    with pytest.raises(RemoteProtocolError, match="inflates past"):
        drain(client)


def test_zrle_rejects_corrupt_zlib() -> None:
    client, _ = connected()
    client.feed(update(rect(0, 0, 4, 4, Encoding.ZRLE, struct.pack(">I", 4) + b"\xff" * 4)))
    with pytest.raises(RemoteProtocolError, match="corrupt zlib"):
        drain(client)
