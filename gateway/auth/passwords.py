"""Password hashing (scrypt) and generation.

Attacker-controlled here: the candidate password (bounded to 1 KiB before hashing) and, for a
stolen database, the stored hash string (parsed strictly). Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

MAX_PASSWORD_BYTES = 1024
MIN_PASSWORD_CHARS = 10
_N, _R, _P = 2**14, 8, 1
_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class WeakPassword(ValueError):
    """The new password does not meet the minimum; the message says what to do."""


def hash_password(password: str) -> str:
    check_strength(password)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when the password matches; always does the same work for unknown accounts."""
    encoded = password.encode()[:MAX_PASSWORD_BYTES]
    try:
        scheme, n, r, p, salt_b64, digest_b64 = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        n_, r_, p_ = int(n), int(r), int(p)
        if n_ > 2**20 or r_ > 16 or p_ > 4:
            raise ValueError
    except ValueError:
        # Burn the same time as a real check so account existence does not leak.
        hashlib.scrypt(encoded, salt=b"\0" * 16, n=_N, r=_R, p=_P, dklen=32)
        return False
    actual = hashlib.scrypt(encoded, salt=salt, n=n_, r=r_, p=p_, dklen=len(expected))
    return hmac.compare_digest(actual, expected)


def check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(
            f"The password is too short: use at least {MIN_PASSWORD_CHARS} characters."
        )
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise WeakPassword("The password is too long: use at most 1024 bytes.")


def generate_password(length: int = 16) -> str:
    """A one-time password that is easy to read out (no 0/O, 1/l/I)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
