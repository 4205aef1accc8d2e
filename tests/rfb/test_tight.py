"""Tight: fill, basic (copy / palette / gradient filters, four zlib streams) and JPEG."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image

from gateway.rfb.buffer import ReceiveBuffer
from gateway.rfb.encodings import Encoding
from gateway.rfb.encodings.tight import read_compact_length
from gateway.rfb.errors import RemoteProtocolError
from gateway.rfb.events import UpdateDone

from .helpers import connected, drain, feed_all_ways, rect, update

W, H = 9, 5
PIXELS = [((x * 29) % 256, (y * 53) % 256, (x * y * 7) % 256) for y in range(H) for x in range(W)]


def compact(n: int) -> bytes:
    out = bytearray([n & 0x7F])
    if n > 0x7F:
        out[0] |= 0x80
        out.append((n >> 7) & 0x7F)
        if n > 0x3FFF:
            out[1] |= 0x80
            out.append(n >> 14)
    return bytes(out)


def payload(data: bytes, comp: zlib._Compress) -> bytes:
    if len(data) < 12:
        return data
    z = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    return compact(len(z)) + z


def tight(x: int, y: int, w: int, h: int, body: bytes) -> bytes:
    return rect(x, y, w, h, Encoding.TIGHT, body)


def colours(surface, x: int, y: int, w: int, h: int) -> list[tuple[int, int, int]]:
    return [surface.rgb(x + i % w, y + i // w) for i in range(w * h)]


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16383, 16384, 4194303])
def test_compact_length_round_trips(n: int) -> None:
    buf = ReceiveBuffer()
    buf.feed(compact(n))
    assert read_compact_length(buf) == n
    assert len(buf) == 0


def test_tight_fill() -> None:
    events, surface = feed_all_ways(
        connected, update(tight(2, 3, 4, 4, b"\x80" + bytes((10, 20, 30))))
    )
    assert events == [UpdateDone(1)]
    assert colours(surface, 2, 3, 4, 4) == [(10, 20, 30)] * 16
    assert surface.rgb(6, 3) == (0, 0, 0)


@pytest.mark.parametrize("stream", [0, 1, 2, 3])
def test_tight_basic_copy_filter_on_each_stream(stream: int) -> None:
    data = b"".join(bytes(p) for p in PIXELS)
    body = bytes([stream << 4]) + payload(data, zlib.compressobj())
    _, surface = feed_all_ways(connected, update(tight(1, 1, W, H, body)))
    assert colours(surface, 1, 1, W, H) == PIXELS


def test_tight_small_rect_is_uncompressed() -> None:
    body = b"\x00" + bytes((1, 2, 3, 4, 5, 6))  # 2 pixels = 6 bytes < 12
    _, surface = feed_all_ways(connected, update(tight(0, 0, 2, 1, body)))
    assert colours(surface, 0, 0, 2, 1) == [(1, 2, 3), (4, 5, 6)]


def test_tight_streams_persist_and_reset() -> None:
    comp = zlib.compressobj()
    data = bytes((7, 8, 9)) * 16
    first = tight(0, 0, 4, 4, b"\x10" + payload(data, comp))  # stream 1
    second = tight(4, 0, 4, 4, b"\x10" + payload(data, comp))  # continues stream 1
    fresh = zlib.compressobj()
    third = tight(0, 4, 4, 4, b"\x12" + payload(data, fresh))  # reset bit 1, new stream
    events, surface = feed_all_ways(connected, update(first, second, third))
    assert events == [UpdateDone(3)]
    assert surface.rgb(7, 3) == (7, 8, 9) and surface.rgb(3, 7) == (7, 8, 9)


def test_tight_palette_two_colours_is_one_bit() -> None:
    a, b = (200, 0, 0), (0, 0, 200)
    pixels = [a if (x + y) % 3 else b for y in range(H) for x in range(W)]
    bits = bytearray()
    for y in range(H):
        row = [0 if pixels[y * W + x] == a else 1 for x in range(W)] + [0] * 7
        bits += bytes(int("".join(map(str, row[i : i + 8])), 2) for i in range(0, W, 8))
    body = b"\x40\x01\x01" + bytes(a) + bytes(b) + payload(bytes(bits), zlib.compressobj())
    _, surface = feed_all_ways(connected, update(tight(0, 0, W, H, body)))
    assert colours(surface, 0, 0, W, H) == pixels


def test_tight_palette_many_colours_is_one_byte_each() -> None:
    palette = [(i * 40, 255 - i * 40, i) for i in range(5)]
    idx = [(i * 3) % 5 for i in range(W * H)]
    body = b"\x40\x01\x04" + b"".join(map(bytes, palette)) + payload(bytes(idx), zlib.compressobj())
    _, surface = feed_all_ways(connected, update(tight(0, 0, W, H, body)))
    assert colours(surface, 0, 0, W, H) == [palette[i] for i in idx]


def test_tight_gradient_filter() -> None:
    flat = [c for p in PIXELS for c in p]
    enc = bytearray(len(flat))
    stride = W * 3
    for i, v in enumerate(flat):
        x = (i % stride) // 3
        y = i // stride
        left = flat[i - 3] if x else 0
        up = flat[i - stride] if y else 0
        up_left = flat[i - stride - 3] if x and y else 0
        enc[i] = (v - min(255, max(0, left + up - up_left))) & 0xFF
    body = b"\x40\x02" + payload(bytes(enc), zlib.compressobj())
    _, surface = feed_all_ways(connected, update(tight(0, 0, W, H, body)))
    assert colours(surface, 0, 0, W, H) == PIXELS


def jpeg(w: int, h: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(out, "JPEG", quality=95)
    return out.getvalue()


def test_tight_jpeg() -> None:
    data = jpeg(16, 8, (250, 120, 10))
    _, surface = feed_all_ways(
        connected, update(tight(4, 4, 16, 8, b"\x90" + compact(len(data)) + data))
    )
    for got in colours(surface, 4, 4, 16, 8):
        assert all(abs(g - e) <= 4 for g, e in zip(got, (250, 120, 10), strict=True))


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"\x90" + compact(len(jpeg(8, 8, (0, 0, 0)))) + jpeg(8, 8, (0, 0, 0)), "JPEG is 8x8"),
        (b"\x90\x05garba", "undecodable JPEG"),
        (b"\xa0", "unsupported compression type 0xa"),
        (b"\x40\x07", "unknown filter 7"),
        (b"\x00" + compact(20) + zlib.compress(bytes(10))[:20].ljust(20, b"\0"), "Tight"),
    ],
)
def test_tight_rejects_bad_rects(body: bytes, reason: str) -> None:
    client, _ = connected()
    client.feed(update(tight(0, 0, 16, 8, body)))
    with pytest.raises(RemoteProtocolError, match=reason):
        drain(client)


def test_tight_rejects_wrong_inflated_size() -> None:
    z = zlib.compressobj()
    short = z.compress(bytes(30)) + z.flush(zlib.Z_SYNC_FLUSH)  # 10 pixels' worth, not 16
    client, _ = connected()
    client.feed(update(tight(0, 0, 4, 4, b"\x00" + compact(len(short)) + short)))
    with pytest.raises(RemoteProtocolError, match="inflated 30 bytes, expected 48"):
        drain(client)
