"""Hypothesis: any bytes give events or a clean RfbError — never another exception or a hang."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.rfb.client import RfbClient
from gateway.rfb.encodings import Encoding
from gateway.rfb.errors import RfbError
from gateway.rfb.limits import Limits

from .helpers import ALL_ENCODINGS, connected, drain, handshake_38_none
from .memsurface import MemorySurface

LIMITS = Limits(max_width=256, max_height=256, max_cut_text=64, max_cut_text_discard=4096)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def feed_chunks(client: RfbClient, chunks: list[bytes]) -> None:
    try:
        for chunk in [*chunks, b""]:
            client.feed(chunk)
            drain(client)
    except RfbError:
        pass


@SETTINGS
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_any_bytes_in_the_handshake(chunks: list[bytes]) -> None:
    client = RfbClient(MemorySurface(), password="pw", encodings=ALL_ENCODINGS, limits=LIMITS)
    feed_chunks(client, [b"RFB 003.008\n", *chunks])


@SETTINGS
@given(st.lists(st.binary(max_size=256), max_size=8))
def test_any_bytes_after_server_init(chunks: list[bytes]) -> None:
    client, _ = connected(32, 32, limits=LIMITS)
    feed_chunks(client, chunks)


ENCODING_NUMBERS = st.sampled_from([int(e) for e in Encoding] + [-1, 99])


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(0, 40), st.integers(0, 40), st.integers(0, 40), st.integers(0, 40),
            ENCODING_NUMBERS, st.binary(max_size=300),
        ),
        max_size=4,
    ),
    st.booleans(),
)  # fmt: skip
def test_structured_updates_with_random_payloads(rects: list, bytewise: bool) -> None:  # type: ignore[type-arg]
    """Valid-looking headers drive the fuzzer into every decoder."""
    data = struct.pack(">BxH", 0, len(rects))
    for x, y, w, h, enc, body in rects:
        data += struct.pack(">HHHHi", x, y, w, h, enc) + body
    client, _ = connected(32, 32, limits=LIMITS)
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    feed_chunks(client, chunks)


def test_handshake_bytes_are_fuzz_seeds_that_connect() -> None:
    client = RfbClient(MemorySurface(), limits=LIMITS)
    client.feed(handshake_38_none(32, 32))
    assert len(drain(client)) == 1
