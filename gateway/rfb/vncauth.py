"""VNC Authentication (RFC 6143 §7.2.2): DES-encrypt the 16-byte challenge with the password.

The key is the password truncated or NUL-padded to 8 bytes with each byte's bits reversed (a
quirk of the original implementation). Single DES is TripleDES with the key repeated.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, modes

try:  # cryptography >= 43 moved the obsolete ciphers here.
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES  # type: ignore

CHALLENGE_LENGTH = 16


def _reverse_bits(byte: int) -> int:
    return int(f"{byte:08b}"[::-1], 2)


def vnc_key(password: bytes) -> bytes:
    padded = password[:8].ljust(8, b"\x00")
    return bytes(_reverse_bits(b) for b in padded)


def vnc_response(password: bytes, challenge: bytes) -> bytes:
    """The 16-byte response to a 16-byte challenge."""
    if len(challenge) != CHALLENGE_LENGTH:
        raise ValueError("VNC challenge must be 16 bytes")
    key = vnc_key(password)
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()
