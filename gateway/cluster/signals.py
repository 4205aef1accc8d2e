"""What nodes say to each other: small JSON signals, one topic table, validated on receipt.

Attacker-controlled here: the text of a received signal — anyone who can write to the shared
database can send one, and a torn or foreign row must not crash a listener. Limits: at most
MAX_TEXT bytes, one JSON object, a known topic, exactly that topic's fields, each a string within
its bound and (for ids) of its character set; anything else is BadSignal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

MAX_TEXT: Final = 2048  # PostgreSQL's NOTIFY allows 8000 bytes; ours are far smaller
VERSION: Final = 1

_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_SESSION = re.compile(r"^[0-9a-f]{8,64}$")
_USER = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
_REASON = re.compile(r"^[^\x00-\x08\x0b-\x1f\x7f]{0,300}$")

SESSION_END: Final = "session.end"  # end one session on the node that holds it
USER_END: Final = "user.end"  # a key revoked or an account disabled: end that user's sessions
# The agent resumed a session on node `to` while node `node` still held it detached (its
# grace running): `node` lets go of it without ending it (gateway.live.nodes).
SESSION_MOVED: Final = "session.moved"

# topic -> field -> pattern: the one table of what a signal may carry.
TOPICS: Final[Mapping[str, Mapping[str, re.Pattern[str]]]] = {
    SESSION_END: {"session": _SESSION, "node": _NODE, "reason": _REASON},
    USER_END: {"user": _USER, "reason": _REASON},
    SESSION_MOVED: {"session": _SESSION, "node": _NODE, "to": _NODE},
}


class BadSignal(ValueError):
    """A received signal was malformed, unknown or out of bounds (logged and ignored)."""


@dataclass(frozen=True, slots=True)
class Signal:
    topic: str
    origin: str  # the node that published it
    payload: Mapping[str, str]


def check(topic: str, origin: str, payload: Mapping[str, object]) -> Signal:
    """The Signal, or BadSignal naming the first thing wrong."""
    fields = TOPICS.get(topic)
    if fields is None:
        raise BadSignal(f"unknown topic {topic[:40]!r}")
    if not isinstance(origin, str) or not _NODE.match(origin):
        raise BadSignal("origin is not a node name")
    if set(payload) != set(fields):
        raise BadSignal(f"{topic}: fields {sorted(map(str, payload))[:8]} are not "
                        f"{sorted(fields)}")
    clean: dict[str, str] = {}
    for name, pattern in fields.items():
        value = payload[name]
        if not isinstance(value, str) or not pattern.match(value):
            raise BadSignal(f"{topic}: {name} is not valid")
        clean[name] = value
    return Signal(topic, origin, clean)


def encode(signal: Signal) -> str:
    text = json.dumps({"v": VERSION, "topic": signal.topic, "origin": signal.origin,
                       "payload": dict(signal.payload)}, separators=(",", ":"),
                      ensure_ascii=False)
    if len(text.encode()) > MAX_TEXT:
        raise BadSignal("signal too long")
    return text


def decode(text: str | bytes) -> Signal:
    """A received signal, or BadSignal."""
    if len(text) > MAX_TEXT or (isinstance(text, str) and len(text.encode()) > MAX_TEXT):
        raise BadSignal("signal too long")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise BadSignal("not JSON") from None
    if not isinstance(data, dict) or set(data) != {"v", "topic", "origin", "payload"}:
        raise BadSignal("not a signal object")
    if data["v"] != VERSION or not isinstance(data["topic"], str):
        raise BadSignal("unknown version or topic")
    if not isinstance(data["payload"], dict):
        raise BadSignal("payload is not an object")
    return check(data["topic"], data["origin"], data["payload"])
