"""Extended Clipboard: every message shape, fed whole, byte by byte and with trailing data,
the replies we send, the bounds on requests and sizes, and the classic fallback."""

from __future__ import annotations

import struct
import zlib
from functools import partial

import pytest

from gateway.rfb.client import RfbClient
from gateway.rfb.clipboard import OUR_CAPS
from gateway.rfb.clipboard_codec import (
    EXTENDED_CLIPBOARD,
    Action,
    Caps,
    Format,
    Notify,
    Peek,
    Provide,
    Request,
    decode,
    encode,
    text_to_wire,
    wrap,
)
from gateway.rfb.errors import LocalProtocolError, RemoteProtocolError
from gateway.rfb.events import Bell, ServerCutText
from gateway.rfb.limits import Limits
from gateway.rfb.messages import set_encodings

from .helpers import ALL_ENCODINGS, connected, drain, feed_all_ways, feed_whole, handshake_38_none
from .memsurface import MemorySurface

#: What TigerVNC's Xvnc sends: text, all five actions, nothing accepted unasked.
XVNC_CAPS = Caps(
    Action.CAPS | Action.REQUEST | Action.PEEK | Action.NOTIFY | Action.PROVIDE,
    ((Format.TEXT, 0),),
)
REQUEST_TEXT = bytes.fromhex("06000000 fffffffc 02000001")
NOTIFY_TEXT = bytes.fromhex("06000000 fffffffc 08000001")


def server(message: Caps | Request | Peek | Notify | Provide) -> bytes:
    return wrap(3, encode(message))


def provide(text: str) -> bytes:
    wire = text_to_wire(text)
    return server(Provide(Format.TEXT, wire, len(wire)))


def provide_raw(inner: bytes, formats: int = Format.TEXT) -> bytes:
    """A Provide whose zlib stream holds exactly ``inner`` (size fields included)."""
    return wrap(3, struct.pack(">I", Action.PROVIDE | formats) + zlib.compress(inner))


def clip_connected(
    limits: Limits | None = None, caps: Caps | None = XVNC_CAPS
) -> tuple[RfbClient, MemorySurface]:
    """Connected with clipboard=True and, unless caps is None, the server's Caps answered."""
    client, surface = connected(limits=limits, clipboard=True)
    if caps is not None:
        assert feed_whole(client, server(caps)) == []
        assert client.data_to_send() == wrap(6, encode(OUR_CAPS))
    return client, surface


def clip(limits: Limits | None = None, caps: Caps | None = XVNC_CAPS) -> RfbClient:
    return clip_connected(limits, caps)[0]


def sent_client_messages(data: bytes) -> list[object]:
    """Split our ClientCutText bytes back into extended messages."""
    out: list[object] = []
    while data:
        kind, length = struct.unpack_from(">B3xi", data)
        assert kind == 6 and length < 0
        out.append(decode(data[8 : 8 - length], 2**20))
        data = data[8 - length :]
    return out


# -- asking -----------------------------------------------------------------------------------
def test_clipboard_off_never_asks_even_if_listed() -> None:
    client = RfbClient(MemorySurface(), encodings=(*ALL_ENCODINGS, EXTENDED_CLIPBOARD))
    client.feed(handshake_38_none())
    drain(client)
    assert client.data_to_send().endswith(set_encodings(ALL_ENCODINGS))
    assert client.set_encodings((0, EXTENDED_CLIPBOARD)) == set_encodings((0,))


def test_clipboard_on_asks_once_at_the_end() -> None:
    client = RfbClient(
        MemorySurface(), encodings=(EXTENDED_CLIPBOARD, *ALL_ENCODINGS), clipboard=True
    )
    client.feed(handshake_38_none())
    drain(client)
    assert client.data_to_send().endswith(set_encodings((*ALL_ENCODINGS, EXTENDED_CLIPBOARD)))
    assert client.set_encodings((0,)) == set_encodings((0, EXTENDED_CLIPBOARD))


def test_negative_length_when_not_asked_is_a_huge_length() -> None:
    client, _ = connected()
    client.feed(server(Notify(Format.TEXT)))
    with pytest.raises(RemoteProtocolError, match="ServerCutText of 4294967292 bytes"):
        drain(client)


# -- server -> us -----------------------------------------------------------------------------
def test_caps_is_answered_with_ours_bytes() -> None:
    client, _ = connected(clipboard=True)
    data = bytes.fromhex("03000000 fffffff8 1f000001 00000000")  # Xvnc's Caps, on the wire
    events, _ = feed_all_ways(partial(connected, clipboard=True), data)
    assert events == []
    assert feed_whole(client, data) == []
    assert client.data_to_send() == bytes.fromhex("06000000 fffffff8 1f000001 00000000")
    assert client.extended_clipboard


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("日本語のテキスト", "日本語のテキスト"),
        ("line 1\nline 2\n", "line 1\nline 2\n"),
        ("", ""),
        ("café ☕ 成績表", "café ☕ 成績表"),
    ],
)
def test_provide_is_a_utf8_server_cut_text(text: str, expected: str) -> None:
    events, _ = feed_all_ways(clip_connected, provide(text))
    wire = text_to_wire(text)
    assert events == [ServerCutText(wire[:-1], len(wire), extended=True, text=expected)]
    assert events[0].text == expected


def test_provide_crlf_nul_and_bad_utf8_are_normalised() -> None:
    inner = b"a\r\nb\rc\xff\0ignored after NUL"
    client = clip()
    (event,) = feed_whole(client, provide_raw(struct.pack(">I", len(inner)) + inner))
    assert isinstance(event, ServerCutText) and event.extended
    assert event.text == "a\nb\nc\ufffd"
    assert event.data == b"a\r\nb\rc\xff"


def test_provide_of_other_formats_only_is_ignored() -> None:
    client = clip()
    data = provide_raw(struct.pack(">I", 3) + b"rtf", Format.RTF) + b"\x02"
    assert feed_whole(client, data) == [Bell()]


def test_provide_text_followed_by_html_keeps_the_text() -> None:
    inner = struct.pack(">I", 3) + b"hi\0" + struct.pack(">I", 5) + b"<b/>\0"
    events = feed_whole(clip(), provide_raw(inner, Format.TEXT | Format.HTML))
    assert [e.text for e in events if isinstance(e, ServerCutText)] == ["hi"]


def test_notify_sends_one_request_and_queues_one_more() -> None:
    client = clip()
    assert feed_whole(client, server(Notify(Format.TEXT))) == []
    assert client.data_to_send() == REQUEST_TEXT
    feed_whole(client, server(Notify(Format.TEXT)))  # changed again before the answer
    assert client.data_to_send() == b""
    assert len(feed_whole(client, provide("first"))) == 1
    assert client.data_to_send() == REQUEST_TEXT  # the queued one, once
    assert feed_whole(client, provide("second"))[0].text == "second"
    assert client.data_to_send() == b""


def test_a_burst_of_notify_costs_one_request_per_two() -> None:
    client = clip()
    feed_whole(client, server(Notify(Format.TEXT)) * 21)
    assert client.data_to_send() == REQUEST_TEXT * 11


def test_an_unanswered_request_does_not_wedge_us() -> None:
    # Xvnc ignores a Request when its selection owner vanished or failed to convert.
    client = clip()
    feed_whole(client, server(Notify(Format.TEXT)))
    assert client.data_to_send() == REQUEST_TEXT
    feed_whole(client, server(Notify(0)))  # the clipboard went away; no Provide will come
    feed_whole(client, server(Notify(Format.TEXT)))
    assert client.data_to_send() == REQUEST_TEXT
    feed_whole(client, server(Notify(Format.TEXT)) * 2)  # silently dropped, then changed twice
    assert client.data_to_send() == REQUEST_TEXT
    assert feed_whole(client, provide("late"))[0].text == "late"


def test_notify_of_an_empty_clipboard_requests_nothing() -> None:
    client = clip()
    feed_whole(client, server(Notify(0)) + server(Notify(Format.HTML)))
    assert client.data_to_send() == b""


def test_notify_when_server_takes_no_request_requests_nothing() -> None:
    client = clip(caps=Caps(Action.NOTIFY | Action.PROVIDE, ((Format.TEXT, 0),)))
    feed_whole(client, server(Notify(Format.TEXT)))
    assert client.data_to_send() == b""


def test_unasked_provide_is_still_an_event_for_policy() -> None:
    assert feed_whole(clip(), provide("x"))[0].text == "x"


# -- bounds -----------------------------------------------------------------------------------
def test_declared_text_over_the_limit_is_dropped_not_fatal() -> None:
    inner = struct.pack(">I", 1000) + b"x" * 1000
    data = provide_raw(inner) + b"\x02"
    events, _ = feed_all_ways(partial(clip_connected, Limits(max_cut_text=500)), data)
    assert events == [ServerCutText(b"", 1000, oversized=True, extended=True), Bell()]


def test_zlib_bomb_inflates_only_the_declared_size() -> None:
    # 64 MiB of zeros in ~64 KiB, but only 16 bytes declared: we inflate 20 bytes and stop.
    inner = struct.pack(">I", 16) + bytes(64 * 1024 * 1024)
    client = clip()
    (event,) = feed_whole(client, provide_raw(inner))
    assert event == ServerCutText(bytes(0), 16, extended=True, text="")


def test_declared_size_of_4_gib_is_dropped_without_inflating() -> None:
    data = provide_raw(struct.pack(">I", 0xFFFFFFFF) + b"x" * 100)
    assert feed_whole(clip(), data) == [
        ServerCutText(b"", 0xFFFFFFFF, oversized=True, extended=True)
    ]


def test_extended_payload_over_the_limit_is_skipped_and_over_discard_is_fatal() -> None:
    limits = Limits(max_cut_text=64, max_cut_text_discard=1000)
    body = provide_raw(struct.pack(">I", 200) + bytes(range(200)) * 1)  # incompressible-ish
    assert 64 < len(body) - 8 < 1000
    events, _ = feed_all_ways(partial(clip_connected, limits), body + b"\x02")
    assert events == [ServerCutText(b"", len(body) - 8, oversized=True, extended=True), Bell()]
    client = clip(limits)
    client.feed(struct.pack(">B3xi", 3, -1001))
    with pytest.raises(RemoteProtocolError, match="ServerCutText of 1001 bytes"):
        drain(client)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x08\x00", "extended clipboard message of 2 bytes"),
        (struct.pack(">I", Action.CAPS | 0b11) + bytes(4), "Caps shorter"),
        (struct.pack(">I", 1 << 29), "actions 0x20"),
        (struct.pack(">I", Action.REQUEST | Action.NOTIFY), "actions 0x0a"),
        (struct.pack(">I", Action.PROVIDE | Format.TEXT) + b"not zlib", "corrupt zlib"),
        (struct.pack(">I", Action.PROVIDE | Format.TEXT) + zlib.compress(b"\0\0"), "ends inside"),
        (
            struct.pack(">I", Action.PROVIDE | Format.TEXT) + zlib.compress(b"\0\0\0\x09short"),
            "ends inside",
        ),
    ],
)
def test_malformed_extended_messages_are_protocol_errors(payload: bytes, match: str) -> None:
    client = clip()
    client.feed(struct.pack(">B3xi", 3, -len(payload)) + payload)
    with pytest.raises(RemoteProtocolError, match=match):
        drain(client)


# -- us -> server -----------------------------------------------------------------------------
def test_cut_text_notifies_then_provides_on_each_request() -> None:
    client = clip()
    assert client.cut_text("成績表 2027") == NOTIFY_TEXT
    for _ in range(2):  # every paste in the desktop asks again
        assert feed_whole(client, server(Request(Format.TEXT))) == []
        (message,) = sent_client_messages(client.data_to_send())
        wire = "成績表 2027".encode() + b"\0"
        assert message == Provide(Format.TEXT, wire, len(wire))


def test_cut_text_line_ends_go_as_crlf() -> None:
    client = clip()
    client.cut_text("a\nb\r\nc")
    feed_whole(client, server(Request(Format.TEXT)))
    (message,) = sent_client_messages(client.data_to_send())
    assert isinstance(message, Provide) and message.text == b"a\r\nb\r\nc\0"


def test_request_without_our_text_or_after_server_change_is_ignored() -> None:
    client = clip()
    feed_whole(client, server(Request(Format.TEXT)))
    assert client.data_to_send() == b""
    client.cut_text("ours")
    feed_whole(client, server(Notify(Format.TEXT)))  # the desktop copied something since
    assert client.data_to_send() == REQUEST_TEXT
    feed_whole(client, server(Request(Format.TEXT)))
    assert client.data_to_send() == b""


def test_peek_is_answered_with_notify() -> None:
    client = clip()
    feed_whole(client, server(Peek()))
    assert sent_client_messages(client.data_to_send()) == [Notify(0)]
    client.cut_text("x")
    feed_whole(client, server(Peek()))
    assert sent_client_messages(client.data_to_send()) == [Notify(Format.TEXT)]


def test_cut_text_goes_unasked_when_server_caps_take_it() -> None:
    caps = Caps(Action.REQUEST | Action.NOTIFY | Action.PROVIDE, ((Format.TEXT, 16),))
    client = clip(caps=caps)
    (small,) = sent_client_messages(client.cut_text("short"))
    assert small == Provide(Format.TEXT, b"short\0", 6)
    assert client.cut_text("x" * 16) == NOTIFY_TEXT  # 17 bytes with its NUL: too big unasked


def test_cut_text_before_caps_is_classic_latin1_with_question_marks() -> None:
    client = clip(caps=None)
    assert not client.extended_clipboard
    classic = bytes.fromhex("06000000 00000009") + b"caf\xe9 ??\nx"
    assert client.cut_text("café 日本\r\nx") == classic
    off, _ = connected()
    assert off.cut_text("成績") == bytes.fromhex("06000000 00000002") + b"??"


def test_cut_text_over_the_limit_is_refused() -> None:
    client = clip(Limits(max_cut_text=8))
    with pytest.raises(LocalProtocolError, match="9 bytes"):
        client.cut_text("x" * 8)


def test_classic_server_cut_text_still_works_with_clipboard_on() -> None:
    events, _ = feed_all_ways(clip_connected, struct.pack(">B3xI", 3, 4) + b"caf\xe9")
    assert events == [ServerCutText(b"caf\xe9", 4)]
    assert events[0].text == "café" and not events[0].extended
