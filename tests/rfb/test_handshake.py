"""Handshake: versions 3.8/3.7/3.3, None and VNC auth, refusals, limits — fed every way."""

from __future__ import annotations

import struct

import pytest

from gateway.rfb.client import RfbClient
from gateway.rfb.errors import (
    AuthenticationFailed,
    LocalProtocolError,
    RemoteProtocolError,
    ServerRefused,
)
from gateway.rfb.events import NEED_DATA, Closed, ServerInit
from gateway.rfb.handshake import TRANSITIONS, Input, State, transition
from gateway.rfb.limits import Limits
from gateway.rfb.messages import BGRX, set_encodings, set_pixel_format
from gateway.rfb.vncauth import vnc_key, vnc_response

from .helpers import ALL_ENCODINGS, FEEDERS, drain, server_init
from .memsurface import MemorySurface

CHALLENGE = bytes(range(16))
OK = b"\x00\x00\x00\x00"
INIT = server_init(32, 16, b"Staff room")
AFTER_INIT = set_pixel_format(BGRX) + set_encodings(ALL_ENCODINGS)


def make(password: str | None = None, limits: Limits | None = None) -> RfbClient:
    return RfbClient(MemorySurface(), password=password, encodings=ALL_ENCODINGS, limits=limits)


def run(client: RfbClient, data: bytes, feeder: str) -> tuple[list[object], bytes]:
    events = FEEDERS[feeder](client, data)
    return events, client.data_to_send()


CASES = {
    "3.8 none": (None, b"RFB 003.008\n\x01\x01" + OK + INIT,
                 b"RFB 003.008\n\x01\x01" + AFTER_INIT),
    "3.8 vnc": ("pw", b"RFB 003.008\n\x02\x01\x02" + CHALLENGE + OK + INIT,
                b"RFB 003.008\n\x02" + vnc_response(b"pw", CHALLENGE) + b"\x01" + AFTER_INIT),
    "3.7 none": (None, b"RFB 003.007\n\x01\x01" + INIT, b"RFB 003.007\n\x01\x01" + AFTER_INIT),
    "3.3 none": (None, b"RFB 003.003\n\x00\x00\x00\x01" + INIT,
                 b"RFB 003.003\n\x01" + AFTER_INIT),
    "3.3 vnc": ("pw", b"RFB 003.003\n\x00\x00\x00\x02" + CHALLENGE + OK + INIT,
                b"RFB 003.003\n" + vnc_response(b"pw", CHALLENGE) + b"\x01" + AFTER_INIT),
    "apple 3.889": (None, b"RFB 003.889\n\x01\x01" + OK + INIT,
                    b"RFB 003.008\n\x01\x01" + AFTER_INIT),
    "3.5 is 3.3": (None, b"RFB 003.005\n\x00\x00\x00\x01" + INIT,
                   b"RFB 003.003\n\x01" + AFTER_INIT),
    "4.0 gets 3.8": (None, b"RFB 004.000\n\x01\x01" + OK + INIT,
                     b"RFB 003.008\n\x01\x01" + AFTER_INIT),
}  # fmt: skip


@pytest.mark.parametrize("feeder", list(FEEDERS))
@pytest.mark.parametrize("case", list(CASES))
def test_handshake_reaches_server_init(case: str, feeder: str) -> None:
    password, incoming, expected_out = CASES[case]
    client = make(password)
    events, sent = run(client, incoming, feeder)
    assert events == [ServerInit(32, 16, "Staff room")]
    assert sent == expected_out
    assert client.state is State.CONNECTED
    assert (client.width, client.height) == (32, 16)


def test_handshake_with_trailing_message_keeps_it() -> None:
    client = make()
    client.feed(b"RFB 003.008\n\x01\x01" + OK + INIT + b"\x02")
    assert [type(e).__name__ for e in drain(client)] == ["ServerInit", "Bell"]


def test_vnc_key_reverses_bits_and_pads() -> None:
    assert vnc_key(b"\x01\x80") == b"\x80\x01" + bytes(6)
    assert vnc_key(b"123456789") == vnc_key(b"12345678")


def test_prefers_vnc_auth_when_password_given_and_none_otherwise() -> None:
    client = make("pw")
    client.feed(b"RFB 003.008\n\x02\x01\x02")
    drain(client)
    assert client.data_to_send().endswith(b"\x02")
    client = make()
    client.feed(b"RFB 003.008\n\x02\x02\x01")
    drain(client)
    assert client.data_to_send().endswith(b"\x01")


def test_vnc_auth_without_password_is_refused() -> None:
    client = make()
    client.feed(b"RFB 003.008\n\x01\x02")
    with pytest.raises(ServerRefused, match="password"):
        drain(client)


def test_unknown_security_types_only_is_refused() -> None:
    client = make("pw")
    client.feed(b"RFB 003.008\n\x02\x13\x10")
    with pytest.raises(ServerRefused, match="no supported security type"):
        drain(client)


def test_no_security_types_carries_the_sanitized_reason() -> None:
    client = make()
    client.feed(b"RFB 003.008\n\x00" + struct.pack(">I", 11) + b"go\x1b[31maway")
    with pytest.raises(ServerRefused, match=r"go\?\[31maway"):
        drain(client)


def test_failed_result_38_carries_reason() -> None:
    client = make("pw")
    client.feed(b"RFB 003.008\n\x01\x02" + CHALLENGE + b"\x00\x00\x00\x01")
    assert drain(client) == []
    client.feed(struct.pack(">I", 14) + b"Wrong password")
    with pytest.raises(AuthenticationFailed, match="Wrong password"):
        drain(client)
    # The error is sticky: the connection is dead.
    with pytest.raises(AuthenticationFailed):
        client.next_event()


def test_failed_result_37_has_no_reason() -> None:
    client = make("pw")
    client.feed(b"RFB 003.007\n\x01\x02" + CHALLENGE + b"\x00\x00\x00\x01")
    with pytest.raises(AuthenticationFailed):
        drain(client)


@pytest.mark.parametrize(
    "greeting", [b"HTTP/1.1 200 ", b"RFB 002.000\n", b"RFB 003.002\n", b"RFB 03.008\n\n"]
)
def test_bad_greeting_is_a_protocol_error(greeting: bytes) -> None:
    client = make()
    client.feed(greeting)
    with pytest.raises(RemoteProtocolError):
        drain(client)


def test_oversized_desktop_is_rejected_before_allocating() -> None:
    surface = MemorySurface()
    client = RfbClient(surface)
    client.feed(b"RFB 003.008\n\x01\x01" + OK + server_init(60000, 60000))
    with pytest.raises(RemoteProtocolError, match="60000x60000 exceeds"):
        drain(client)
    assert surface.width == 0


def test_long_name_and_reason_are_rejected() -> None:
    client = make()
    client.feed(b"RFB 003.008\n\x01\x01" + OK + INIT[:20] + struct.pack(">I", 2**31))
    with pytest.raises(RemoteProtocolError, match="desktop name"):
        drain(client)
    client = make(limits=Limits(max_reason_length=10))
    client.feed(b"RFB 003.008\n\x00" + struct.pack(">I", 11))
    with pytest.raises(RemoteProtocolError, match="failure reason"):
        drain(client)


def test_eof_during_handshake_is_closed() -> None:
    client = make()
    client.feed(b"RFB 003.008\n\x01")
    assert drain(client) == []
    client.feed(b"")
    assert client.next_event() == Closed("server closed the connection during the handshake")
    assert client.state is State.CLOSED


def test_client_messages_need_a_connection() -> None:
    client = make()
    with pytest.raises(LocalProtocolError):
        client.key_event(0x61, True)
    assert client.next_event() is NEED_DATA


def test_every_open_state_accepts_eof_and_nothing_else_is_implied() -> None:
    for state in State:
        if state is not State.CLOSED:
            assert TRANSITIONS[(state, Input.EOF)] is State.CLOSED
    with pytest.raises(RemoteProtocolError, match="unexpected SERVER_INIT"):
        transition(State.AWAIT_VERSION, Input.SERVER_INIT)
    with pytest.raises(RemoteProtocolError):
        transition(State.CLOSED, Input.EOF)
