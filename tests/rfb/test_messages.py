"""Server messages after the handshake, client message bytes, and the limits on both."""

from __future__ import annotations

import struct

import pytest

from gateway.rfb.encodings import Encoding
from gateway.rfb.errors import LocalProtocolError, RemoteProtocolError
from gateway.rfb.events import Bell, Closed, ServerCutText, UpdateDone
from gateway.rfb.limits import Limits

from .helpers import bgrx, connected, drain, feed_all_ways, rect, update


def cut_text(data: bytes, length: int | None = None) -> bytes:
    return struct.pack(">B3xI", 3, len(data) if length is None else length) + data


def test_bell_and_cut_text_are_events() -> None:
    events, _ = feed_all_ways(connected, b"\x02" + cut_text(b"caf\xe9"))
    assert events == [Bell(), ServerCutText(b"caf\xe9", 4)]
    assert events[1].text == "café"


def test_oversized_cut_text_is_read_and_dropped_not_fatal() -> None:
    limits = Limits(max_cut_text=8, max_cut_text_discard=100)
    client, _ = connected(limits=limits)
    client.feed(cut_text(b"x" * 50)[:30])
    assert drain(client) == []
    client.feed(cut_text(b"x" * 50)[30:] + b"\x02")
    assert drain(client) == [ServerCutText(b"", 50, oversized=True), Bell()]


def test_cut_text_beyond_the_discard_limit_is_fatal() -> None:
    client, _ = connected()
    client.feed(cut_text(b"", length=2**31))
    with pytest.raises(RemoteProtocolError, match="ServerCutText of 2147483648 bytes"):
        drain(client)


def test_colour_map_is_read_and_ignored() -> None:
    data = struct.pack(">BxHH", 1, 0, 2) + bytes(12) + b"\x02"
    events, _ = feed_all_ways(connected, data)
    assert events == [Bell()]


def test_unknown_message_type_is_a_protocol_error() -> None:
    client, _ = connected()
    client.feed(b"\x07")
    with pytest.raises(RemoteProtocolError, match="unknown server message type 7"):
        drain(client)


def test_empty_update_is_done() -> None:
    events, _ = feed_all_ways(connected, update())
    assert events == [UpdateDone(0)]


def test_rect_outside_framebuffer_is_rejected() -> None:
    client, _ = connected(64, 48)
    client.feed(update(rect(60, 0, 5, 1, Encoding.RAW, bytes(20))))
    with pytest.raises(RemoteProtocolError, match=r"5x1\+60\+0 lies outside the 64x48"):
        drain(client)


def test_too_many_rects_is_rejected() -> None:
    client, _ = connected(limits=Limits(max_rects=3))
    client.feed(update(count=4))
    with pytest.raises(RemoteProtocolError, match="4 rectangles"):
        drain(client)


def test_last_rect_counts_against_the_limit_too() -> None:
    client, _ = connected(limits=Limits(max_rects=3))
    client.feed(update(*[rect(0, 0, 1, 1, Encoding.RAW, bytes(4))] * 4, count=0xFFFF))
    with pytest.raises(RemoteProtocolError, match="exceeds 3 rectangles"):
        drain(client)


def test_last_rect_ends_an_update() -> None:
    data = update(
        rect(0, 0, 1, 1, Encoding.RAW, bgrx(1, 2, 3)), rect(0, 0, 0, 0, Encoding.LAST_RECT),
        count=0xFFFF,
    ) + b"\x02"  # fmt: skip
    events, surface = feed_all_ways(connected, data)
    assert events == [UpdateDone(1), Bell()]
    assert surface.rgb(0, 0) == (1, 2, 3)


def test_unsupported_encoding_is_rejected() -> None:
    client, _ = connected()
    client.feed(update(rect(0, 0, 1, 1, Encoding.HEXTILE)))
    with pytest.raises(RemoteProtocolError, match="unsupported encoding 5"):
        drain(client)


def test_eof_between_messages_and_inside_one() -> None:
    client, _ = connected()
    client.feed(b"")
    assert drain(client) == [Closed("server closed the connection")]
    client, _ = connected()
    client.feed(update(rect(0, 0, 2, 2, Encoding.RAW, bytes(7))))
    assert drain(client) == []
    assert client.mid_message
    client.feed(b"")
    assert drain(client) == [Closed("server closed the connection in the middle of a message")]


def test_client_message_bytes() -> None:
    client, _ = connected(64, 48)
    assert client.framebuffer_update_request(False) == b"\x03\x00" + struct.pack(
        ">HHHH", 0, 0, 64, 48
    )
    assert client.framebuffer_update_request(True, (1, 2, 3, 4)) == bytes.fromhex(
        "0301000100020003 0004"
    )
    assert client.key_event(0xFF0D, True) == bytes.fromhex("04010000 0000ff0d")
    assert client.pointer_event(10, 20, 1) == bytes.fromhex("0501 000a 0014")
    assert client.client_cut_text("hé") == bytes.fromhex("06000000 00000002 68e9")
    assert client.set_encodings((0, -239)) == bytes.fromhex("0200 0002 00000000 ffffff11")
    with pytest.raises(LocalProtocolError):
        client.pointer_event(70000, 0, 0)
    with pytest.raises(LocalProtocolError):
        client.key_event(-1, True)
