"""Hypothesis on the Extended Clipboard: any payload gives events or a clean RfbError, and
every message we can encode decodes to itself and re-encodes to the same bytes."""

from __future__ import annotations

import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.rfb.clipboard_codec import (
    Action,
    Caps,
    Format,
    Notify,
    Peek,
    Provide,
    Request,
    decode,
    encode,
    text_from_wire,
    text_to_wire,
    wrap,
)
from gateway.rfb.errors import RfbError
from gateway.rfb.events import ServerCutText
from gateway.rfb.limits import Limits

from .helpers import drain
from .test_clipboard import clip

LIMITS = Limits(max_cut_text=256, max_cut_text_discard=4096)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ACTIONS = st.sampled_from([int(a) for a in Action] + [1 << 29, 1 << 31, 0])
FORMATS = st.integers(0, 0xFFFF)


def feed(data: bytes, bytewise: bool) -> None:
    client = clip(LIMITS)
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    try:
        for chunk in [*chunks, b""]:
            client.feed(chunk)
            for event in drain(client):
                if isinstance(event, ServerCutText) and not event.oversized:
                    assert len(event.data) <= LIMITS.max_cut_text
            client.data_to_send()
    except RfbError:
        pass


@SETTINGS
@given(st.binary(max_size=300), st.booleans())
def test_any_extended_payload(payload: bytes, bytewise: bool) -> None:
    feed(struct.pack(">B3xi", 3, -len(payload)) + payload, bytewise)


@SETTINGS
@given(ACTIONS, FORMATS, st.binary(max_size=300), st.booleans(), st.booleans())
def test_structured_extended_messages(
    action: int, formats: int, body: bytes, compress: bool, bytewise: bool
) -> None:
    """Valid flags words (and zlib bodies) drive the fuzzer into every branch."""
    payload = struct.pack(">I", action | formats) + (zlib.compress(body) if compress else body)
    feed(wrap(3, payload) + b"\x02", bytewise)


@SETTINGS
@given(st.text(max_size=200), st.integers(0, 9))
def test_provide_round_trip(text: str, level: int) -> None:
    wire = text_to_wire(text)
    message = Provide(Format.TEXT, wire, len(wire))
    payload = encode(message)
    assert decode(payload, 2**20) == message
    assert encode(decode(payload, 2**20)) == payload
    # Another zlib effort (as another server might use) decodes to the same message.
    other = payload[:4] + zlib.compress(struct.pack(">I", len(wire)) + wire, level)
    assert decode(other, 2**20) == message
    expected = text.replace("\r\n", "\n").replace("\r", "\n").split("\0", 1)[0]
    assert text_from_wire(wire)[1] == expected.encode("utf-8", "replace").decode()


@SETTINGS
@given(
    st.one_of(
        st.builds(Request, FORMATS),
        st.builds(Notify, FORMATS),
        st.just(Peek()),
        st.builds(
            lambda actions, sizes: Caps(
                actions | Action.CAPS, tuple((1 << i, s) for i, s in sorted(sizes.items()))
            ),
            st.sampled_from([0, Action.REQUEST | Action.NOTIFY, 0x1F000000]),
            st.dictionaries(st.integers(0, 15), st.integers(0, 2**32 - 1), max_size=16),
        ),
    )
)
def test_flag_messages_round_trip(message: Caps | Request | Notify | Peek) -> None:
    payload = encode(message)
    assert decode(payload, 1024) == message
    assert encode(decode(payload, 1024)) == payload
