"""Certificate profiles (certs/profiles.toml) loaded into frozen dataclasses, validated at load.

Attacker-controlled here: nothing at run time; the file is operator data, and a wrong file stops
the gateway with `file:line: [profile] key: expected …, got …` rather than issuing odd certificates.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PROFILES_FILE = Path(__file__).resolve().parents[2] / "certs" / "profiles.toml"
REQUIRED = ("root-ca", "gateway-server", "teacher-key")
CURVES = ("P-256", "P-384")
KEY_USAGES = ("digital_signature", "key_cert_sign", "crl_sign")
EXTENDED_KEY_USAGES = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
}
DISPLAY_NAME_ATTRIBUTES = {"pseudonym": NameOID.PSEUDONYM, "title": NameOID.TITLE}
SCHOOL_YEAR_END = "school-year-end"
# Beyond this a leaf certificate outlives every rotation plan; needs `unsafe = true`.
SAFE_LEAF_DAYS = 825


class ProfileError(ValueError):
    """profiles.toml is wrong; the message names the file, line, profile and key."""


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    ca: bool
    curves: tuple[str, ...]
    key_usage: frozenset[str]
    extended_key_usage: tuple[str, ...]
    validity_days: int | None
    valid_until: str | None
    max_validity_days: int | None
    path_length: int | None
    display_name: str | None
    unsafe: bool

    @property
    def default_curve(self) -> str:
        return self.curves[0]

    def key_usage_extension(self) -> x509.KeyUsage:
        ku = self.key_usage
        return x509.KeyUsage(
            digital_signature="digital_signature" in ku, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            key_cert_sign="key_cert_sign" in ku, crl_sign="crl_sign" in ku,
            encipher_only=False, decipher_only=False)

    def extended_key_usage_extension(self) -> x509.ExtendedKeyUsage | None:
        if not self.extended_key_usage:
            return None
        return x509.ExtendedKeyUsage([EXTENDED_KEY_USAGES[u] for u in self.extended_key_usage])

    def display_name_oid(self) -> x509.ObjectIdentifier | None:
        return DISPLAY_NAME_ATTRIBUTES[self.display_name] if self.display_name else None


class _Reader:
    """Typed access to one profile's table with errors that point at the line."""

    def __init__(self, path: Path, lines: list[str], name: str, data: Mapping[str, Any]):
        self.path, self.lines, self.name, self.data = path, lines, name, data

    def fail(self, key: str, expected: str, got: object) -> ProfileError:
        return ProfileError(f"{self.path}:{self._line(key)}: [{self.name}] {key}: expected "
                            f"{expected}, got {got!r}")

    def _line(self, key: str) -> int:
        section = f"[{self.name}]"
        start = next((i for i, ln in enumerate(self.lines) if ln.strip() == section), 0)
        for i in range(start + 1, len(self.lines)):
            stripped = self.lines[i].strip()
            if stripped.startswith("["):
                break
            if stripped.split("=", 1)[0].strip() == key:
                return i + 1
        return start + 1

    def get(self, key: str, kind: type, expected: str, default: Any = None) -> Any:
        value = self.data.get(key, default)
        # bool is an int subclass: never accept true for a number of days.
        if value is not None and (not isinstance(value, kind)
                                  or (kind is int and isinstance(value, bool))):
            raise self.fail(key, expected, value)
        return value

    def names(self, key: str, allowed: Any) -> tuple[str, ...]:
        expected = f"a list of {', '.join(allowed)}"
        values = self.get(key, list, expected, [])
        if not all(isinstance(v, str) and v in allowed for v in values) \
                or len(set(values)) != len(values):
            raise self.fail(key, expected, values)
        return tuple(values)

    def days(self, key: str) -> int | None:
        value = self.get(key, int, "a number of days (1 or more)")
        if value is not None and value < 1:
            raise self.fail(key, "a number of days (1 or more)", value)
        return value  # type: ignore[no-any-return]


_KEYS = {"ca", "path_length", "curves", "key_usage", "extended_key_usage", "validity_days",
         "valid_until", "max_validity_days", "display_name", "unsafe"}


def _profile(r: _Reader) -> Profile:
    for key in r.data:
        if key not in _KEYS:
            raise r.fail(key, f"one of {', '.join(sorted(_KEYS))}", key)
    ca = r.get("ca", bool, "true or false", False)
    curves = r.names("curves", CURVES) or ("P-256",)
    key_usage = frozenset(r.names("key_usage", KEY_USAGES))
    eku = r.names("extended_key_usage", tuple(EXTENDED_KEY_USAGES))
    validity, until = r.days("validity_days"), r.get("valid_until", str, f'"{SCHOOL_YEAR_END}"')
    if until not in (None, SCHOOL_YEAR_END):
        raise r.fail("valid_until", f'"{SCHOOL_YEAR_END}"', until)
    if (validity is None) == (until is None):
        raise r.fail("validity_days", "either validity_days or valid_until", validity)
    path_length = r.get("path_length", int, "a number (0 or more)")
    if path_length is not None and (not ca or path_length < 0):
        raise r.fail("path_length", "a number (0 or more) on a CA profile", path_length)
    display = r.get("display_name", str, f"one of {', '.join(DISPLAY_NAME_ATTRIBUTES)}")
    if display is not None and display not in DISPLAY_NAME_ATTRIBUTES:
        raise r.fail("display_name", f"one of {', '.join(DISPLAY_NAME_ATTRIBUTES)}", display)
    unsafe = r.get("unsafe", bool, "true or false", False)
    if ca and "key_cert_sign" not in key_usage:
        raise r.fail("key_usage", "key_cert_sign on a CA profile", sorted(key_usage))
    if not ca and not unsafe:
        if key_usage & {"key_cert_sign", "crl_sign"}:
            raise r.fail("key_usage", "no CA usage on a leaf profile (or unsafe = true)",
                         sorted(key_usage))
        longest = max(validity or 0, r.days("max_validity_days") or 0)
        if longest > SAFE_LEAF_DAYS:
            raise r.fail("validity_days", f"at most {SAFE_LEAF_DAYS} days on a leaf profile "
                         "(or unsafe = true)", longest)
    return Profile(r.name, ca, curves, key_usage, eku, validity, until,
                   r.days("max_validity_days"), path_length, display, unsafe)


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, Profile]:
    """Every profile in `path`, validated; the three the gateway needs must be there."""
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{path}: {e}") from None
    lines = text.splitlines()
    profiles = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ProfileError(f"{path}: {name}: expected a [{name}] table, got {body!r}")
        profiles[name] = _profile(_Reader(path, lines, name, body))
    for required in REQUIRED:
        if required not in profiles:
            raise ProfileError(f"{path}: the profile [{required}] is missing")
    if not profiles["root-ca"].ca:
        raise ProfileError(f"{path}: [root-ca] ca: expected true, got false")
    return profiles
