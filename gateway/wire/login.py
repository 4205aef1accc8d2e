"""The login handshake between agent and gateway (sans-I/O; shared by both sides).

Attacker-controlled here: every message from the peer (JSON text frames, at most 64 KiB, fields
type- and length-checked). The gateway's nonce is single-use; the token's signature covers a
transcript binding the protocol label, the nonce, the gateway's TLS certificate as the agent saw
it (RFC 5929 tls-server-end-point), the posture report and the user id, so neither a replay nor a
relay through another TLS endpoint verifies.

    agent                                   gateway
      | -- Hello(user, certificate) ---------> |
      | <-------- Challenge(nonce, factors) -- |
      | -- Login(posture, factors, sig) -----> |
      | <----------- Welcome | Denied -------- |   then binary display frames (docs/PROTOCOL.md)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

VERSION = 1
LABEL = b"staffroom login v1"
MAX_MESSAGE = 16 * 1024  # every handshake message, before anyone is known
FACTORS = ("password", "totp")


class LoginProtocolError(Exception):
    """The peer broke the protocol; the connection is closed with this reason."""


class State(StrEnum):
    START = "start"
    HELLO = "hello"  # agent sent / gateway received Hello
    CHALLENGE = "challenge"  # the Challenge went across
    LOGIN = "login"  # the Login went across
    DONE = "done"  # Welcome
    FAILED = "failed"  # Denied, or a protocol error


@dataclass(frozen=True, slots=True)
class Hello:
    user: str
    certificate: bytes  # DER
    version: int = VERSION
    resume: str | None = None  # the resume secret a Welcome gave, to resume after a blip


@dataclass(frozen=True, slots=True)
class Challenge:
    nonce: str
    factors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Login:
    posture: dict[str, Any]  # PostureReport.to_json() — canonicalised inside the transcript
    signature: bytes  # DER ECDSA over transcript(), made by the token
    password: str | None = None
    totp: str | None = None


@dataclass(frozen=True, slots=True)
class Welcome:
    session: str
    user: str
    name: str
    school: str | None
    resumed: bool = False
    policy: dict[str, Any] = field(default_factory=dict)  # what is off, limits, watermark
    # A secret for resuming this session after a network blip (never shown, unlike `session`,
    # which the watermark prints); a resume also needs a fresh signature by the same key.
    resume_token: str | None = None


@dataclass(frozen=True, slots=True)
class Denied:
    code: str
    message: str


Message = Hello | Challenge | Login | Welcome | Denied

SEND, RECEIVE = "send", "receive"
# Every legal step in one table (h11 "Rule 1"): (role, state, direction, message) -> next state.
TRANSITIONS: dict[tuple[str, State, str, type], State] = {
    ("agent", State.START, SEND, Hello): State.HELLO,
    ("agent", State.HELLO, RECEIVE, Challenge): State.CHALLENGE,
    ("agent", State.HELLO, RECEIVE, Denied): State.FAILED,
    ("agent", State.CHALLENGE, SEND, Login): State.LOGIN,
    ("agent", State.LOGIN, RECEIVE, Welcome): State.DONE,
    ("agent", State.LOGIN, RECEIVE, Denied): State.FAILED,
    ("gateway", State.START, RECEIVE, Hello): State.HELLO,
    ("gateway", State.HELLO, SEND, Challenge): State.CHALLENGE,
    ("gateway", State.HELLO, SEND, Denied): State.FAILED,
    ("gateway", State.CHALLENGE, RECEIVE, Login): State.LOGIN,
    ("gateway", State.LOGIN, SEND, Welcome): State.DONE,
    ("gateway", State.LOGIN, SEND, Denied): State.FAILED,
}


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def transcript(nonce: str, server_cert_hash: bytes, posture: dict[str, Any], user: str,
               resume: str | None = None) -> bytes:
    """What the token signs: | label | nonce | tls-server-end-point | sha256(posture) | user |
    resume |, each part length-prefixed (u32 big-endian) so no two transcripts collide."""
    parts = (LABEL, nonce.encode(), server_cert_hash, hashlib.sha256(canonical_json(posture))
             .digest(), user.encode(), (resume or "").encode())
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def encode(message: Message) -> str:
    if isinstance(message, Hello):
        body: dict[str, Any] = {"type": "hello", "version": message.version, "user": message.user,
                                "certificate": base64.b64encode(message.certificate).decode(),
                                "resume": message.resume}
    elif isinstance(message, Challenge):
        body = {"type": "challenge", "nonce": message.nonce, "factors": list(message.factors)}
    elif isinstance(message, Login):
        body = {"type": "login", "posture": message.posture,
                "signature": base64.b64encode(message.signature).decode(),
                "password": message.password, "totp": message.totp}
    elif isinstance(message, Welcome):
        body = {"type": "welcome", "session": message.session, "user": message.user,
                "name": message.name, "school": message.school, "resumed": message.resumed,
                "policy": message.policy, "resume_token": message.resume_token}
    else:
        body = {"type": "denied", "code": message.code, "message": message.message}
    return json.dumps(body, ensure_ascii=False)


def _str(d: dict[str, Any], key: str, max_len: int, *, optional: bool = False) -> Any:
    value = d.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise LoginProtocolError(f"field {key!r} must be a string of at most {max_len} chars")
    return value


def _b64(d: dict[str, Any], key: str, max_len: int) -> bytes:
    try:
        return base64.b64decode(_str(d, key, max_len), validate=True)
    except (binascii.Error, ValueError):
        raise LoginProtocolError(f"field {key!r} is not base64") from None


def decode(text: str | bytes) -> Message:
    if isinstance(text, bytes):
        raise LoginProtocolError("expected a text frame during the login handshake")
    if len(text) > MAX_MESSAGE:
        raise LoginProtocolError("login message too large")
    try:
        d = json.loads(text)
    except ValueError:
        raise LoginProtocolError("login message is not JSON") from None
    if not isinstance(d, dict):
        raise LoginProtocolError("login message is not an object")
    kind = d.get("type")
    if kind == "hello":
        if d.get("version") != VERSION:
            raise LoginProtocolError(f"unsupported protocol version {d.get('version')!r:.20}")
        return Hello(_str(d, "user", 64), _b64(d, "certificate", 8192),
                     resume=_str(d, "resume", 64, optional=True))
    if kind == "challenge":
        factors = d.get("factors")
        if not isinstance(factors, list) or not set(factors) <= set(FACTORS):
            raise LoginProtocolError("bad factors list")
        return Challenge(_str(d, "nonce", 128), tuple(factors))
    if kind == "login":
        posture = d.get("posture")
        if not isinstance(posture, dict):
            raise LoginProtocolError("posture must be an object")
        return Login(posture, _b64(d, "signature", 512),
                     password=_str(d, "password", 1024, optional=True),
                     totp=_str(d, "totp", 16, optional=True))
    if kind == "welcome":
        policy = d.get("policy", {})
        return Welcome(_str(d, "session", 64), _str(d, "user", 64), _str(d, "name", 200),
                       _str(d, "school", 64, optional=True), bool(d.get("resumed")),
                       policy if isinstance(policy, dict) else {},
                       _str(d, "resume_token", 64, optional=True))
    if kind == "denied":
        return Denied(_str(d, "code", 64), _str(d, "message", 1000))
    raise LoginProtocolError(f"unknown login message type {kind!r:.40}")


class LoginConnection:
    """One side of the handshake: checks each message against TRANSITIONS."""

    def __init__(self, role: str) -> None:
        if role not in ("agent", "gateway"):
            raise ValueError(role)
        self.role = role
        self.state = State.START

    def _step(self, message: Message, direction: str) -> None:
        nxt = TRANSITIONS.get((self.role, self.state, direction, type(message)))
        if nxt is None:
            state, self.state = self.state, State.FAILED
            raise LoginProtocolError(
                f"{type(message).__name__} may not be {direction}d in state {state.value}")
        self.state = nxt

    def send(self, message: Message) -> str:
        self._step(message, SEND)
        return encode(message)

    def receive(self, text: str | bytes) -> Message:
        try:
            message = decode(text)
        except LoginProtocolError:
            self.state = State.FAILED
            raise
        self._step(message, RECEIVE)
        return message
