"""Raw encoding into a real BGRX surface."""

from __future__ import annotations

import random
import struct

import pytest

from gateway.rfb.encodings import Encoding
from gateway.rfb.errors import RemoteProtocolError
from gateway.rfb.events import UpdateDone

from .helpers import bgrx, connected, drain, feed_all_ways, rect, update


def test_raw_rect_lands_at_its_position() -> None:
    pixels = b"".join(bgrx(r, 0, 0) for r in range(6))
    events, surface = feed_all_ways(connected, update(rect(10, 20, 3, 2, Encoding.RAW, pixels)))
    assert events == [UpdateDone(1)]
    assert [surface.rgb(10 + i % 3, 20 + i // 3) for i in range(6)] == [(r, 0, 0) for r in range(6)]
    assert surface.rgb(9, 20) == (0, 0, 0)


def test_raw_large_rect_is_drawn_as_rows_arrive() -> None:
    client, surface = connected(640, 480)
    row = bgrx(9, 8, 7) * 640
    data = update(rect(0, 0, 640, 480, Encoding.RAW, row * 480))
    client.feed(data[: 4 + 12 + len(row) * 100 + 5])
    assert drain(client) == []
    assert surface.rgb(639, 99) == (9, 8, 7)
    assert surface.rgb(0, 100) == (0, 0, 0)
    client.feed(data[4 + 12 + len(row) * 100 + 5 :])
    assert drain(client) == [UpdateDone(1)]
    assert surface.rgb(639, 479) == (9, 8, 7)


@pytest.mark.parametrize("w,h", [(0, 5), (5, 0)])
def test_raw_empty_rect_has_no_payload(w: int, h: int) -> None:
    events, _ = feed_all_ways(connected, update(rect(0, 0, w, h, Encoding.RAW)))
    assert events == [UpdateDone(1)]


def test_many_raw_rects_in_one_update_land_as_drawn_in_order() -> None:
    """A scrolled view arrives as ~150 Raw rectangles in one update; fed whole, the parser
    blits each without its decoder (part AJ), fed byte by byte each goes through RawDecoder:
    both must paint every rectangle, overlapping ones in order, with CopyRects and empty
    rectangles between them."""
    rng = random.Random(11)
    width, height = 64, 48
    model = [[(0, 0, 0)] * width for _ in range(height)]
    rects: list[bytes] = []
    for i in range(60):
        if i % 10 == 9:  # a CopyRect of a block already drawn, read before it is written
            w, h = rng.randint(1, 20), rng.randint(1, 20)
            sx, sy = rng.randrange(width - w + 1), rng.randrange(height - h + 1)
            x, y = rng.randrange(width - w + 1), rng.randrange(height - h + 1)
            block = [row[sx:sx + w] for row in model[sy:sy + h]]
            for j, row in enumerate(block):
                model[y + j][x:x + w] = row
            rects.append(rect(x, y, w, h, Encoding.COPYRECT, struct.pack(">HH", sx, sy)))
            continue
        w, h = rng.randint(0, 24), rng.randint(0, 16)
        x, y = rng.randrange(width - w + 1), rng.randrange(height - h + 1)
        colours = [(rng.randrange(256), rng.randrange(256), rng.randrange(256))
                   for _ in range(w * h)]
        for k, c in enumerate(colours):
            model[y + k // w][x + k % w] = c
        rects.append(rect(x, y, w, h, Encoding.RAW, b"".join(bgrx(*c) for c in colours)))
    events, surface = feed_all_ways(connected, update(*rects))
    assert events == [UpdateDone(60)]
    assert [[surface.rgb(x, y) for x in range(width)] for y in range(height)] == model


def test_a_whole_raw_rect_past_the_edge_is_refused_like_a_partial_one() -> None:
    """The fast path blits only rectangles inside the framebuffer; one past its edge, even
    with all its pixels in the buffer, is refused as before."""
    client, _ = connected(64, 48)
    client.feed(update(rect(1, 0, 64, 2, Encoding.RAW, bytes(64 * 2 * 4))))
    with pytest.raises(RemoteProtocolError, match="lies outside"):
        drain(client)
