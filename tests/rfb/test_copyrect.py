"""CopyRect: overlapping copies and a source outside the framebuffer."""

from __future__ import annotations

import struct

import pytest

from gateway.rfb.encodings import Encoding
from gateway.rfb.errors import RemoteProtocolError

from .helpers import bgrx, connected, drain, feed_all_ways, rect, update

COLUMN = b"".join(bgrx(0, 0, y) for y in range(4))


def test_copyrect_scrolls_up_with_overlap() -> None:
    data = update(
        rect(0, 0, 1, 4, Encoding.RAW, COLUMN),
        rect(0, 0, 1, 3, Encoding.COPYRECT, struct.pack(">HH", 0, 1)),
    )
    _, surface = feed_all_ways(connected, data)
    assert [surface.rgb(0, y)[2] for y in range(4)] == [1, 2, 3, 3]


def test_copyrect_scrolls_down_with_overlap() -> None:
    data = update(
        rect(0, 0, 1, 4, Encoding.RAW, COLUMN),
        rect(0, 1, 1, 3, Encoding.COPYRECT, struct.pack(">HH", 0, 0)),
    )
    _, surface = feed_all_ways(connected, data)
    assert [surface.rgb(0, y)[2] for y in range(4)] == [0, 0, 1, 2]


def test_copyrect_source_outside_framebuffer_is_rejected() -> None:
    client, _ = connected(64, 48)
    client.feed(update(rect(0, 0, 10, 10, Encoding.COPYRECT, struct.pack(">HH", 60, 0))))
    with pytest.raises(RemoteProtocolError, match="CopyRect source"):
        drain(client)
