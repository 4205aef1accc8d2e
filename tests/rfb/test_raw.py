"""Raw encoding into a real BGRX surface."""

from __future__ import annotations

import pytest

from gateway.rfb.encodings import Encoding
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
