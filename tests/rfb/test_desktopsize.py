"""DesktopSize and ExtendedDesktopSize pseudo-encodings."""

from __future__ import annotations

import struct

import pytest

from gateway.rfb.encodings import Encoding
from gateway.rfb.errors import RemoteProtocolError
from gateway.rfb.events import Resized, UpdateDone

from .helpers import bgrx, connected, drain, feed_all_ways, rect, update


def test_desktop_size_resizes_and_later_rects_use_the_new_size() -> None:
    data = update(
        rect(0, 0, 100, 80, Encoding.DESKTOP_SIZE),
        rect(99, 79, 1, 1, Encoding.RAW, bgrx(5, 6, 7)),
    )
    events, surface = feed_all_ways(connected, data)
    assert events == [Resized(100, 80), UpdateDone(2)]
    assert (surface.width, surface.height) == (100, 80)
    assert surface.rgb(99, 79) == (5, 6, 7)


def test_same_size_is_not_a_resize() -> None:
    events, surface = feed_all_ways(connected, update(rect(0, 0, 64, 48, Encoding.DESKTOP_SIZE)))
    assert events == [UpdateDone(1)]
    assert surface.resizes == [(64, 48)]  # only the ServerInit


def ext(reason: int, status: int, w: int, h: int, screens: int = 1) -> bytes:
    body = struct.pack(">B3x", screens) + struct.pack(">IHHHHI", 0, 0, 0, w, h, 0) * screens
    return rect(reason, status, w, h, Encoding.EXTENDED_DESKTOP_SIZE, body)


def test_extended_desktop_size() -> None:
    events, surface = feed_all_ways(connected, update(ext(0, 0, 320, 200, screens=2)))
    assert events == [Resized(320, 200), UpdateDone(1)]
    assert surface.width == 320


def test_extended_desktop_size_error_status_keeps_size() -> None:
    events, surface = feed_all_ways(connected, update(ext(1, 3, 320, 200)))
    assert events == [UpdateDone(1)]
    assert surface.width == 64


@pytest.mark.parametrize("encoding", [Encoding.DESKTOP_SIZE, Encoding.EXTENDED_DESKTOP_SIZE])
def test_oversized_resize_is_rejected(encoding: int) -> None:
    client, surface = connected()
    body = ext(0, 0, 9000, 100)[12:] if encoding == Encoding.EXTENDED_DESKTOP_SIZE else b""
    client.feed(update(rect(0, 0, 9000, 100, encoding, body)))
    with pytest.raises(RemoteProtocolError, match="9000x100 exceeds"):
        drain(client)
    assert surface.width == 64
