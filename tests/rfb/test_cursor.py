"""Cursor pseudo-encoding: pixels and mask reach Surface.set_cursor; size is bounded."""

from __future__ import annotations

import pytest

from gateway.rfb.encodings import Encoding
from gateway.rfb.errors import RemoteProtocolError
from gateway.rfb.events import UpdateDone

from .helpers import bgrx, connected, drain, feed_all_ways, rect, update


def test_cursor_shape_and_hot_spot() -> None:
    pixels = bgrx(1, 2, 3) * 30  # 10 x 3
    mask = b"\xff\xc0" * 3  # 10 bits per row, padded to 2 bytes
    events, surface = feed_all_ways(
        connected, update(rect(4, 1, 10, 3, Encoding.CURSOR, pixels + mask))
    )
    assert events == [UpdateDone(1)]
    assert surface.cursor == (4, 1, 10, 3, pixels, mask)


def test_cursor_outside_the_framebuffer_is_fine_it_is_not_a_region() -> None:
    client, surface = connected(8, 8)
    client.feed(update(rect(100, 100, 1, 1, Encoding.CURSOR, bgrx(0, 0, 0) + b"\x80")))
    assert drain(client) == [UpdateDone(1)]
    assert surface.cursor is not None and surface.cursor[:2] == (0, 0)  # hot spot clamped


def test_huge_cursor_is_rejected() -> None:
    client, _ = connected()
    client.feed(update(rect(0, 0, 5000, 5000, Encoding.CURSOR)))
    with pytest.raises(RemoteProtocolError, match="cursor 5000x5000"):
        drain(client)
