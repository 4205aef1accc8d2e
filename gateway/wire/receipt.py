"""The work receipt (勤務記録の受領書) given to a teacher at the end of a session, gateway-signed.

Attacker-controlled here: a receipt file given to verify() (anyone may hand one in), at most
MAX_FILE bytes. A receipt verifies only if the file is byte for byte the canonical form
(sorted-key JSON without spaces, one final newline) and the gateway's Ed25519 signature covers
LABEL + the canonical receipt: so any one changed byte, anywhere in the file, fails.

Shared by gateway (signs, verifies for `staffroom reports verify-receipt`), agent (receives it as
a text frame on the tunnel and saves it) and viewer (offers it for download).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.wire.login import canonical_json

LABEL = b"staffroom work receipt v1\n"
KIND = "staffroom.work-receipt"
MAX_FILE = 4096
FIELDS = ("kind", "session", "user", "school", "start", "end", "active_minutes",
          "idle_minutes", "gateway", "key_id")


class ReceiptError(ValueError):
    """The receipt does not verify; the message is one sentence for the person checking it."""


@dataclass(frozen=True, slots=True)
class WorkReceipt:
    session: str
    user: str
    school: str | None
    start: str  # ISO 8601 UTC, seconds
    end: str
    active_minutes: int
    idle_minutes: int
    gateway: str  # the gateway's host name
    key_id: str = ""  # key_id() of the signing key

    def body(self) -> dict[str, Any]:
        return {"kind": KIND, "session": self.session, "user": self.user, "school": self.school,
                "start": self.start, "end": self.end, "active_minutes": self.active_minutes,
                "idle_minutes": self.idle_minutes, "gateway": self.gateway,
                "key_id": self.key_id}


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def sign(receipt: WorkReceipt, key: Ed25519PrivateKey) -> bytes:
    """The receipt file: canonical JSON {"receipt": …, "signature": base64} and a newline."""
    body = {**receipt.body(), "key_id": key_id(key.public_key())}
    signature = key.sign(LABEL + canonical_json(body))
    return canonical_json({"receipt": body,
                           "signature": base64.b64encode(signature).decode()}) + b"\n"


def read(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(receipt fields, signature) of a file in canonical form, or ReceiptError."""
    if len(data) > MAX_FILE:
        raise ReceiptError("This file is too large to be a Staffroom work receipt.")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise ReceiptError("This file is not a Staffroom work receipt (not JSON).") from None
    if not isinstance(doc, dict) or set(doc) != {"receipt", "signature"} \
            or not isinstance(doc["receipt"], dict) or set(doc["receipt"]) != set(FIELDS) \
            or doc["receipt"].get("kind") != KIND or not isinstance(doc["signature"], str):
        raise ReceiptError("This file is not a Staffroom work receipt.")
    if canonical_json(doc) + b"\n" != data:
        raise ReceiptError("This receipt was changed after the gateway signed it.")
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptError("This receipt's signature is damaged.") from None
    return doc["receipt"], signature


def verify(data: bytes, keys: list[Ed25519PublicKey]) -> dict[str, Any]:
    """The receipt's fields if one of `keys` signed exactly these bytes; else ReceiptError."""
    body, signature = read(data)
    for key in keys:
        if key_id(key) != body["key_id"]:
            continue
        try:
            key.verify(signature, LABEL + canonical_json(body))
        except InvalidSignature:
            raise ReceiptError("This receipt was changed after the gateway signed it.") from None
        return body
    raise ReceiptError("This receipt was not signed by this gateway's receipt key.")


def tunnel_frame(data: bytes) -> str:
    """The text frame the gateway sends the agent just before the session's End."""
    return json.dumps({"type": "receipt", "file": data.decode()}, ensure_ascii=False)


def from_tunnel_frame(text: str) -> bytes | None:
    """The receipt file of a text frame from the gateway, or None if it is not one."""
    if len(text) > 2 * MAX_FILE:
        return None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("type") != "receipt" \
            or not isinstance(doc.get("file"), str):
        return None
    data = doc["file"].encode()
    return data if 0 < len(data) <= MAX_FILE else None
