"""Password hashing (argon2id, OWASP parameters), verification of older scrypt hashes, and
generation.

Attacker-controlled here: the candidate password (bounded to 1 KiB before hashing) and, for a
stolen database, the stored hash string (parsed strictly, with its cost bounded so a planted
hash cannot make one check take minutes). Comparison is constant-time. Every call here is CPU-
and memory-heavy on purpose: callers on the event loop run them in gateway.auth.pool.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_PASSWORD_BYTES = 1024
MIN_PASSWORD_CHARS = 10
# OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1 (the minimum it names).
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
# Cost bounds for hashes read back from the database.
_MAX_MEMORY_KIB, _MAX_TIME_COST, _MAX_PARALLELISM = 256 * 1024, 10, 8
_N, _R, _P = 2**14, 8, 1  # the scrypt parameters of hashes made before argon2id
_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

_HASHER = PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
                         parallelism=ARGON2_PARALLELISM, hash_len=32, salt_len=16,
                         type=Type.ID)
# Verified against for unknown accounts, so that they cost the same as known ones.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))


class WeakPassword(ValueError):
    """The new password does not meet the minimum; the message says what to do."""


def hash_password(password: str) -> str:
    check_strength(password)
    return _HASHER.hash(password.encode())


def verify_password(password: str, stored: str | None) -> bool:
    """True when the password matches; always does comparable work for unknown accounts."""
    encoded = password.encode()[:MAX_PASSWORD_BYTES]
    if stored is not None and stored.startswith("scrypt$"):
        return _verify_scrypt(encoded, stored)
    if stored is None or not _argon2_cost_ok(stored):
        _burn(encoded)
        return False
    try:
        return _HASHER.verify(stored, encoded)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str | None) -> bool:
    """True for a hash made with older parameters (scrypt, or weaker argon2): after a
    successful login the caller stores a fresh argon2id hash of the same password."""
    if stored is None:
        return False
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


def rehash(password: str) -> str:
    """A fresh hash of a password that just verified (no strength check: it is already in
    use, and refusing it here would lock its owner out)."""
    return _HASHER.hash(password.encode()[:MAX_PASSWORD_BYTES])


def _burn(encoded: bytes) -> None:
    with contextlib.suppress(VerificationError):
        _HASHER.verify(_DUMMY, encoded)


def _argon2_cost_ok(stored: str) -> bool:
    """The stored hash is argon2id with parameters inside our bounds."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[1] != "argon2id":
        return False
    try:
        params = dict(p.split("=", 1) for p in parts[3].split(","))
        m, t, p = int(params["m"]), int(params["t"]), int(params["p"])
    except (KeyError, ValueError):
        return False
    return 0 < m <= _MAX_MEMORY_KIB and 0 < t <= _MAX_TIME_COST and 0 < p <= _MAX_PARALLELISM


def _verify_scrypt(encoded: bytes, stored: str) -> bool:
    try:
        _, n, r, p, salt_b64, digest_b64 = stored.split("$")
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        n_, r_, p_ = int(n), int(r), int(p)
        if n_ > 2**20 or r_ > 16 or p_ > 4:
            raise ValueError
    except ValueError:
        _burn(encoded)
        return False
    actual = hashlib.scrypt(encoded, salt=salt, n=n_, r=r_, p=p_, dklen=len(expected))
    return hmac.compare_digest(actual, expected)


def legacy_scrypt_hash(password: str) -> str:
    """A hash in the pre-argon2id format (for migration tests and tools only)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


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
