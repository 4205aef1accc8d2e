"""The rules an audit event must follow before it is written: shape, size, and no secrets.

Attacker-controlled here: every string in an event (a user name typed at login, a remote address,
a window title). Limits: strings are cut to 4096 characters, details to 64 keys and lists to 256
scalars; detail keys that name a secret (password, PIN, TOTP, token, key material) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

MAX_STRING = 4096  # characters of one string field; longer peer input is cut, not refused
MAX_DETAILS = 64
MAX_LIST = 256
TRUNCATED = "…(truncated)"
PEM_REDACTED = "(redacted: looked like a private key)"
RESERVED_PREFIX = "audit."  # only the log itself writes these kinds

DetailValue = str | int | bool | None | tuple[str | int | bool | None, ...]

_KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
_OUTCOME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_DETAIL_KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_WORD_RE = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# A key naming one of these is refused however it is spelt ("newPassword", "user_totp_code").
_SECRET_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "totp",
    "credential",
    "privatekey",
    "apikey",
    "cookie",
    "bearer",
    "authorization",
)
# ...and these only as whole words ("pin" must not catch "mapping" or "shipping").
_SECRET_WORDS = frozenset(
    {
        "pin",
        "puk",
        "pwd",
        "otp",
        "key",
        "keys",
        "private",
        "pem",
        "der",
        "hotp",
        "csrf",
        "session_key",
    }
)
# Naming a secret's identity is fine: "token_serial", "key_id", "key_fingerprint".
_SAFE_LAST_WORDS = frozenset(
    {"id", "serial", "label", "fingerprint", "type", "usage", "algorithm", "count"}
)


def is_secret_key(name: str) -> bool:
    """True when a detail key names a secret value (which must never be written to the log)."""
    words = [w.lower() for w in _WORD_RE.findall(name)]
    if words and words[-1] in _SAFE_LAST_WORDS:
        return False
    compact = "".join(words)
    return any(p in compact for p in _SECRET_PARTS) or any(w in _SECRET_WORDS for w in words)


def check_kind(kind: object, *, internal: bool = False) -> str:
    if not isinstance(kind, str) or len(kind) > 64 or not _KIND_RE.fullmatch(kind):
        raise ValueError(f"audit kind must be dotted lower-case words, got {kind!r:.80}")
    if kind.startswith(RESERVED_PREFIX) and not internal:
        raise ValueError(f"audit kinds starting with {RESERVED_PREFIX!r} are written by the log")
    return str(kind)


def check_outcome(outcome: object) -> str:
    if not isinstance(outcome, str) or not _OUTCOME_RE.fullmatch(outcome):
        raise ValueError(f"audit outcome must be a short lower-case word, got {outcome!r:.80}")
    return str(outcome)


def clean_details(details: object, *, internal: bool = False) -> Mapping[str, DetailValue]:
    if not isinstance(details, Mapping):
        raise ValueError("audit details must be a mapping")
    if len(details) > MAX_DETAILS:
        raise ValueError(f"audit details hold at most {MAX_DETAILS} keys")
    clean: dict[str, DetailValue] = {}
    for key, value in details.items():
        if not isinstance(key, str) or not _DETAIL_KEY_RE.fullmatch(key):
            raise ValueError(f"audit detail key must be a short identifier, got {key!r:.80}")
        if not internal and is_secret_key(key):
            raise ValueError(
                f"audit detail {key!r} looks like a secret; secrets never go in the log"
            )
        clean[key] = clean_value(key, value)
    return MappingProxyType(clean)


def clean_optional(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"audit field {name} must be a string or None")
    return clean_str(value)


def clean_str(value: str, limit: int = MAX_STRING) -> str:
    if len(value) > limit:
        value = value[: limit - len(TRUNCATED)] + TRUNCATED
    value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    if "PRIVATE KEY-----" in value:
        # Redact rather than refuse: a peer could otherwise choose to stop its own audit record.
        return PEM_REDACTED
    return value


def clean_value(key: str, value: object) -> DetailValue:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return clean_str(value)
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            raise ValueError(f"audit detail {key!r} holds more than {MAX_LIST} items")
        items = [clean_value(key, v) for v in value]
        if any(isinstance(v, tuple) for v in items):
            raise ValueError(f"audit detail {key!r}: lists must hold plain values")
        return tuple(items)  # type: ignore[arg-type]
    raise ValueError(
        f"audit detail {key!r} must be str, int, bool, None or a list of those, "
        f"got {type(value).__name__}"
    )
