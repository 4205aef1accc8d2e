"""The node-bus codec: what a signal may say, and what a receiver refuses."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.cluster.signals import (
    MAX_TEXT,
    SESSION_END,
    USER_END,
    BadSignal,
    Signal,
    check,
    decode,
    encode,
)

END = Signal(SESSION_END, "node-a", {"session": "0123456789abcdef0123", "node": "node-b",
                                     "reason": "An officer ended this session: 面談"})


def test_round_trip() -> None:
    assert decode(encode(END)) == END
    user = check(USER_END, "b", {"user": "t.sato", "reason": ""})
    assert decode(encode(user).encode()) == user


@pytest.mark.parametrize("text", [
    "", "null", "[]", "{", "\x00", '"x"',
    '{"v":1,"topic":"session.end","origin":"a"}',  # no payload
    '{"v":2,"topic":"user.end","origin":"a","payload":{"user":"u","reason":""}}',
    '{"v":1,"topic":"drop.tables","origin":"a","payload":{}}',
    '{"v":1,"topic":"user.end","origin":"a b","payload":{"user":"u","reason":""}}',
    '{"v":1,"topic":"user.end","origin":"a","payload":{"user":"","reason":""}}',
    '{"v":1,"topic":"user.end","origin":"a","payload":{"user":1,"reason":""}}',
    '{"v":1,"topic":"user.end","origin":"a","payload":{"user":"u"}}',
    '{"v":1,"topic":"user.end","origin":"a","payload":{"user":"u","reason":"","x":"y"}}',
    '{"v":1,"topic":"user.end","origin":"a","payload":{"user":"u\\u001b[2J","reason":""}}',
    '{"v":1,"topic":"session.end","origin":"a","payload":'
    '{"session":"../../etc","node":"b","reason":""}}',
    '{"v":1,"topic":"session.end","origin":"a","payload":'
    '{"session":"abcdef0123","node":"b","reason":"' + "x" * 301 + '"}}',
    '{"v":1,"topic":"user.end","origin":"a","payload":"user"}',
    '{"v":1,"topic":"user.end","origin":"a","payload":{"user":"u","reason":""},"extra":1}',
])
def test_malformed_or_forged_is_refused(text: str) -> None:
    with pytest.raises(BadSignal):
        decode(text)


def test_oversized_is_refused_before_parsing() -> None:
    with pytest.raises(BadSignal, match="too long"):
        decode(json.dumps({"pad": "x" * MAX_TEXT}))


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_any_input_is_a_signal_or_bad_signal(text: str | bytes) -> None:
    with contextlib.suppress(BadSignal):
        decode(text)


@given(st.from_regex(r"[0-9a-f]{8,64}", fullmatch=True),
       st.text(max_size=300).filter(lambda s: all(c >= " " or c in "\t\n" for c in s)
                                    and "\x7f" not in s))
def test_session_end_round_trips(session: str, reason: str) -> None:
    sig = check(SESSION_END, "a", {"session": session, "node": "b", "reason": reason})
    assert decode(encode(sig)) == sig
