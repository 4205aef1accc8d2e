"""Call-centre help messages of the display codec (issue 13): HelpState to the viewer and Help
from it — byte tables whole and byte by byte, direction, bounds, unknown values refused."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.wire import display as w
from gateway.wire.display import Direction
from tests.display.test_wire_display import tr

V, G = Direction.TO_VIEWER, Direction.TO_GATEWAY

TABLE: list[tuple[w.Message, bytes, Direction]] = [
    (w.HelpState(w.HelpStatus.NONE), b"\x20\x00\x00\x00\x01\x00", V),
    (w.HelpState(w.HelpStatus.ASKED), b"\x20\x00\x00\x00\x01\x01", V),
    (w.HelpState(w.HelpStatus.WATCHING, "窓口 一郎 (help.1)"),
     b"\x20\x00\x00\x00\x17\x02" + "窓口 一郎 (help.1)".encode(), V),
    (w.HelpState(w.HelpStatus.CONTROL, "x"), b"\x20\x00\x00\x00\x02\x03x", V),
    (w.Help(w.HelpAction.ASK), b"\xa0\x00\x00\x00\x01\x01", G),
    (w.Help(w.HelpAction.ALLOW_CONTROL), b"\xa0\x00\x00\x00\x01\x02", G),
    (w.Help(w.HelpAction.VIEW_ONLY), b"\xa0\x00\x00\x00\x01\x03", G),
    (w.Help(w.HelpAction.END), b"\xa0\x00\x00\x00\x01\x04", G),
]  # fmt: skip


@pytest.mark.parametrize(("msg", "raw", "direction"), TABLE)
def test_help_table_encode_and_decode(msg: w.Message, raw: bytes, direction: Direction) -> None:
    assert w.encode(msg) == raw
    assert tr(direction, raw) == [msg]
    assert tr(direction, raw, chunk=1) == [msg]
    assert tr(direction, raw * 3, chunk=4) == [msg] * 3


def test_help_wire_numbers() -> None:
    # The viewer (protocol.js) and the console depend on these exact values.
    assert (w.MessageType.HELP_STATE, w.MessageType.HELP) == (0x20, 0xA0)
    assert w.HelloFlags.HELP == 256
    assert [int(s) for s in w.HelpStatus] == [0, 1, 2, 3]
    assert [int(a) for a in w.HelpAction] == [1, 2, 3, 4]


@pytest.mark.parametrize(("raw", "direction", "error"), [
    (b"\xa0\x00\x00\x00\x01\x00", G, w.MalformedMessage),  # no action 0
    (b"\xa0\x00\x00\x00\x01\x05", G, w.MalformedMessage),
    (b"\xa0\x00\x00\x00\x02\x01\x01", G, w.MessageTooLarge),
    (b"\xa0\x00\x00\x00\x00", G, w.MalformedMessage),
    (b"\x20\x00\x00\x00\x01\x04", V, w.MalformedMessage),  # no status 4
    (b"\x20\x00\x00\x00\x03\x02\xff\xfe", V, w.MalformedMessage),  # helper not UTF-8
    (b"\x20\x00\x00\x00\x00", V, w.MalformedMessage),
    (b"\xa0\x00\x00\x00\x01\x01", V, w.UnknownMessage),  # Help goes to the gateway only
    (b"\x20\x00\x00\x00\x01\x01", G, w.UnknownMessage),  # HelpState to the viewer only
])  # fmt: skip
def test_bad_help_messages_are_protocol_errors(raw: bytes, direction: Direction,
                                               error: type[Exception]) -> None:
    with pytest.raises(error):
        tr(direction, raw)


def test_a_helper_name_over_the_text_cap_is_refused_from_the_header() -> None:
    dec = w.DisplayDecoder(V)
    dec.feed(struct.pack(">BI", w.MessageType.HELP_STATE, 2 + w.MAX_TEXT))
    with pytest.raises(w.MessageTooLarge):
        dec.next_event()
    with pytest.raises(ValueError):
        w.encode(w.HelpState(w.HelpStatus.WATCHING, "名" * 400))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(w.HelpStatus)), st.text(max_size=60), st.integers(1, 7))
def test_help_state_round_trips_in_any_chunking(status, helper, chunk) -> None:  # type: ignore[no-untyped-def]
    msg = w.HelpState(status, helper)
    assert tr(V, w.encode(msg) * 2, chunk=chunk) == [msg, msg]
