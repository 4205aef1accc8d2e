"""Proof of possession for key issuance: what the token signs when a CIO issues a key.

Shared by the agent (signs) and the gateway (verifies). The message binds a protocol label, the
gateway's single-use nonce, the user id and the public key, so a signature cannot be replayed for
another user, another key or another challenge.
"""

from __future__ import annotations

LABEL = b"staffroom key-issue proof of possession v1"


def pop_message(nonce: str, user_id: str, spki_der: bytes) -> bytes:
    """| label | 0 | nonce (ascii) | 0 | user id (utf-8) | 0 | SubjectPublicKeyInfo DER |"""
    return b"\0".join((LABEL, nonce.encode("ascii"), user_id.encode(), spki_der))
