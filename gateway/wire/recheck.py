"""In-session posture reports from the agent to the gateway (sans-I/O; shared by both sides).

Attacker-controlled here: every report (the home PC is untrusted). A report is one JSON text frame
on the tunnel (display frames are binary, so the two never mix), at most MAX_MESSAGE bytes; the
posture inside is parsed by PostureReport.from_json (16 KiB, known keys only). The token signs a
transcript binding a protocol label, the session id, a sequence number that must grow, the
gateway's TLS certificate as the agent saw it and the SHA-256 of the report: a report replayed
(same or older sequence), moved to another session or relayed through another TLS endpoint does
not verify or is refused.

    agent                                          gateway
      | -- {"type": "posture", seq, reason, posture, signature} --> |   every ~recheck_every
      |                                                             |   (jittered) and when the
      |                                                             |   antivirus state changes
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gateway.wire.login import canonical_json

LABEL = b"staffroom posture v1"
MAX_MESSAGE = 32 * 1024
MAX_SEQ = 2**53  # JSON-safe integer
REASONS = ("interval", "changed")
# The agent waits between JITTER_LOW and 1.0 times the interval, so sessions started together
# spread out; the gateway counts a report as missing only after OVERDUE_FACTOR times the
# interval plus OVERDUE_SLACK seconds (network, a PC waking from sleep).
JITTER_LOW = 0.75
OVERDUE_FACTOR = 1.25
OVERDUE_SLACK = 5.0


class RecheckProtocolError(Exception):
    """A posture report frame that is not one; the message is safe to audit."""


@dataclass(frozen=True, slots=True)
class PostureUpdate:
    seq: int  # 1, 2, 3, … per session (the login's report is 0)
    posture: dict[str, Any]  # PostureReport.to_json(), canonicalised inside the transcript
    signature: bytes  # DER ECDSA over transcript(), made by the token
    reason: str = "interval"  # "interval" or "changed" (the antivirus state changed)


def transcript(session: str, seq: int, server_cert_hash: bytes, posture: dict[str, Any]) -> bytes:
    """What the token signs: | label | session | seq u64 | tls-server-end-point |
    sha256(posture) |, each part length-prefixed (u32 big-endian)."""
    parts = (LABEL, session.encode(), seq.to_bytes(8, "big"), server_cert_hash,
             hashlib.sha256(canonical_json(posture)).digest())
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def encode(update: PostureUpdate) -> str:
    return json.dumps({"type": "posture", "seq": update.seq, "reason": update.reason,
                       "posture": update.posture,
                       "signature": base64.b64encode(update.signature).decode()},
                      ensure_ascii=False)


def decode(text: str | bytes) -> PostureUpdate:
    if isinstance(text, bytes):
        raise RecheckProtocolError("a posture report must be a text frame")
    if len(text) > MAX_MESSAGE:
        raise RecheckProtocolError("posture report too large")
    try:
        d = json.loads(text)
    except (ValueError, RecursionError):
        raise RecheckProtocolError("posture report is not JSON") from None
    if not isinstance(d, dict) or d.get("type") != "posture":
        raise RecheckProtocolError("not a posture report")
    seq, posture, reason, sig = d.get("seq"), d.get("posture"), d.get("reason"), d.get("signature")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 < seq < MAX_SEQ:
        raise RecheckProtocolError("seq must be a positive whole number")
    if not isinstance(posture, dict):
        raise RecheckProtocolError("posture must be an object")
    if reason not in REASONS:
        raise RecheckProtocolError("reason must be 'interval' or 'changed'")
    if not isinstance(sig, str) or len(sig) > 512:
        raise RecheckProtocolError("signature must be base64 of at most 512 chars")
    try:
        signature = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise RecheckProtocolError("signature is not base64") from None
    return PostureUpdate(seq, posture, signature, reason)


def next_delay(interval: float, u: float) -> float:
    """Seconds until the next periodic report, for u uniform in [0, 1)."""
    return interval * (JITTER_LOW + (1.0 - JITTER_LOW) * u)


def overdue_after(interval: float) -> float:
    """Seconds after the last report when the gateway counts the next one as missing."""
    return interval * OVERDUE_FACTOR + OVERDUE_SLACK


def antivirus_state(posture: dict[str, Any]) -> bytes:
    """What "the antivirus state changed" compares: the products part of a report."""
    return canonical_json(posture.get("antivirus"))
