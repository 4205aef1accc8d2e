"""The login handshake codec and its transition table (pure, no sockets)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.wire.login import (
    Challenge,
    Denied,
    Hello,
    Login,
    LoginConnection,
    LoginProtocolError,
    State,
    Welcome,
    decode,
    encode,
    transcript,
)

HELLO = Hello(user="t.tanaka", certificate=b"\x30\x82der", resume=None)
CHALLENGE = Challenge(nonce="n" * 43, factors=("password",))
LOGIN = Login(posture={"os": "linux"}, signature=b"\x30\x45sig", password="pw", totp=None)
WELCOME = Welcome(session="s1", user="t.tanaka", name="田中", school="s1", policy={"a": 1})
DENIED = Denied(code="cert-revoked", message="Your key has been revoked.")


@pytest.mark.parametrize("message", [HELLO, CHALLENGE, LOGIN, WELCOME, DENIED])
def test_round_trip(message: object) -> None:
    assert decode(encode(message)) == message  # type: ignore[arg-type]


def test_full_exchange_follows_the_table() -> None:
    agent, gateway = LoginConnection("agent"), LoginConnection("gateway")
    assert gateway.receive(agent.send(HELLO)) == HELLO
    assert agent.receive(gateway.send(CHALLENGE)) == CHALLENGE
    assert gateway.receive(agent.send(LOGIN)) == LOGIN
    assert agent.receive(gateway.send(WELCOME)) == WELCOME
    assert agent.state is State.DONE and gateway.state is State.DONE


@pytest.mark.parametrize("first", [CHALLENGE, LOGIN, WELCOME, DENIED])
def test_gateway_refuses_anything_but_hello_first(first: object) -> None:
    gateway = LoginConnection("gateway")
    with pytest.raises(LoginProtocolError):
        gateway.receive(encode(first))  # type: ignore[arg-type]
    assert gateway.state is State.FAILED


def test_second_login_after_welcome_is_refused() -> None:
    agent, gateway = LoginConnection("agent"), LoginConnection("gateway")
    gateway.receive(agent.send(HELLO))
    agent.receive(gateway.send(CHALLENGE))
    gateway.receive(agent.send(LOGIN))
    gateway.send(WELCOME)
    with pytest.raises(LoginProtocolError):
        gateway.receive(encode(LOGIN))


@pytest.mark.parametrize("text,fragment", [
    (b"binary", "text frame"),
    ("x" * 70000, "too large"),
    ("[1]", "not an object"),
    ("{", "not JSON"),
    (json.dumps({"type": "hello", "version": 2, "user": "u", "certificate": ""}), "version"),
    (json.dumps({"type": "hello", "version": 1, "user": "u" * 65, "certificate": ""}), "user"),
    (json.dumps({"type": "hello", "version": 1, "user": "u", "certificate": "!!"}), "base64"),
    (json.dumps({"type": "challenge", "nonce": "n", "factors": ["smoke"]}), "factors"),
    (json.dumps({"type": "login", "posture": [], "signature": ""}), "posture"),
    (json.dumps({"type": "nope"}), "unknown"),
])
def test_malformed_messages_are_protocol_errors(text: str | bytes, fragment: str) -> None:
    with pytest.raises(LoginProtocolError, match=fragment):
        decode(text)


def test_transcript_binds_every_part() -> None:
    base = transcript("nonce", b"h" * 32, {"os": "linux"}, "t1", None)
    variants = [
        transcript("nonce2", b"h" * 32, {"os": "linux"}, "t1", None),
        transcript("nonce", b"x" * 32, {"os": "linux"}, "t1", None),
        transcript("nonce", b"h" * 32, {"os": "windows"}, "t1", None),
        transcript("nonce", b"h" * 32, {"os": "linux"}, "t2", None),
        transcript("nonce", b"h" * 32, {"os": "linux"}, "t1", "s1"),
    ]
    assert all(v != base for v in variants)
    # Key order in the posture report does not matter (canonical JSON).
    assert transcript("n", b"h", {"a": 1, "b": 2}, "u") == transcript("n", b"h", {"b": 2, "a": 1},
                                                                      "u")


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_any_input_decodes_or_raises_protocol_error(data: str | bytes) -> None:
    with contextlib.suppress(LoginProtocolError):
        decode(data)
