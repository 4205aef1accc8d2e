"""Byte builders and feeding helpers for the pure codec tests (h11's ``tr()`` shape)."""

from __future__ import annotations

import struct
from collections.abc import Callable

from gateway.rfb.client import RfbClient
from gateway.rfb.encodings import Encoding
from gateway.rfb.events import NEED_DATA, Bell, Closed, Event, ServerInit
from gateway.rfb.limits import Limits
from gateway.rfb.messages import BGRX

from .memsurface import MemorySurface

ALL_ENCODINGS = (
    Encoding.COPYRECT, Encoding.ZRLE, Encoding.TIGHT, Encoding.RAW, Encoding.DESKTOP_SIZE,
    Encoding.EXTENDED_DESKTOP_SIZE, Encoding.LAST_RECT, Encoding.CURSOR,
)  # fmt: skip


def server_init(width: int, height: int, name: bytes = b"desk") -> bytes:
    return struct.pack(">HH", width, height) + BGRX.pack() + struct.pack(">I", len(name)) + name


def handshake_38_none(width: int = 64, height: int = 48) -> bytes:
    return b"RFB 003.008\n" + b"\x01\x01" + b"\x00\x00\x00\x00" + server_init(width, height)


def rect(x: int, y: int, w: int, h: int, encoding: int, payload: bytes = b"") -> bytes:
    return struct.pack(">HHHHi", x, y, w, h, encoding) + payload


def update(*rects: bytes, count: int | None = None) -> bytes:
    return struct.pack(">BxH", 0, len(rects) if count is None else count) + b"".join(rects)


def bgrx(r: int, g: int, b: int) -> bytes:
    return bytes((b, g, r, 0))


def drain(client: RfbClient) -> list[Event]:
    out: list[Event] = []
    for _ in range(100_000):  # a bound, so a bug cannot hang the test run
        event = client.next_event()
        if event is NEED_DATA:
            return out
        out.append(event)  # type: ignore[arg-type]
        if isinstance(event, Closed):  # it stays Closed; stop here
            return out
    raise AssertionError("next_event never returned NEED_DATA")


def connected(
    width: int = 64, height: int = 48, limits: Limits | None = None, clipboard: bool = False
) -> tuple[RfbClient, MemorySurface]:
    surface = MemorySurface()
    client = RfbClient(surface, encodings=ALL_ENCODINGS, limits=limits, clipboard=clipboard)
    client.feed(handshake_38_none(width, height))
    assert drain(client) == [ServerInit(width, height, "desk")]
    client.data_to_send()
    return client, surface


def feed_whole(client: RfbClient, data: bytes) -> list[Event]:
    client.feed(data)
    return drain(client)


def feed_bytewise(client: RfbClient, data: bytes) -> list[Event]:
    events: list[Event] = []
    for i in range(len(data)):
        client.feed(data[i : i + 1])
        events += drain(client)
    return events


FEEDERS: dict[str, Callable[[RfbClient, bytes], list[Event]]] = {
    "whole": feed_whole,
    "bytewise": feed_bytewise,
}


def feed_all_ways(
    make: Callable[[], tuple[RfbClient, MemorySurface]], data: bytes
) -> tuple[list[Event], MemorySurface]:
    """Feed whole, byte by byte and with a trailing Bell; all three must agree."""
    results = []
    for feeder in FEEDERS.values():
        client, surface = make()
        results.append((feeder(client, data), bytes(surface.data), surface))
    client, surface = make()
    trailing = feed_whole(client, data + b"\x02")
    assert trailing[-1] == Bell(), "trailing data was not parsed as the next message"
    results.append((trailing[:-1], bytes(surface.data), surface))
    first_events, first_pixels, first_surface = results[0]
    for events, pixels, _ in results[1:]:
        assert events == first_events
        assert pixels == first_pixels
    return first_events, first_surface
