"""Certificate profiles (certs/profiles.toml) as frozen dataclasses, validated at load."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

PROFILES_FILE = Path(__file__).resolve().parent.parent.parent / "certs" / "profiles.toml"
CURVES = ("P-256", "P-384")


class ProfileError(ValueError):
    """profiles.toml is wrong; the message names the profile and key."""


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    validity_days: int | None
    valid_until: str | None
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    curves: tuple[str, ...]
    path_length: int | None


def _load_one(name: str, data: dict[str, object]) -> Profile:
    allowed = {"validity_days", "valid_until", "key_usage", "extended_key_usage", "curves",
               "path_length"}
    unknown = set(data) - allowed
    if unknown:
        raise ProfileError(f"profile {name}: unknown keys {sorted(unknown)}")
    curves = tuple(data.get("curves", ["P-256"]))  # type: ignore[arg-type]
    if not set(curves) <= set(CURVES):
        raise ProfileError(f"profile {name}: curves must be among {CURVES}")
    validity = data.get("validity_days")
    valid_until = data.get("valid_until")
    if validity is None and valid_until != "school-year-end":
        raise ProfileError(f"profile {name}: needs validity_days or valid_until = "
                           "\"school-year-end\"")
    return Profile(name, int(validity) if validity is not None else None,  # type: ignore
                   str(valid_until) if valid_until else None,
                   tuple(data.get("key_usage", ())),  # type: ignore[arg-type]
                   tuple(data.get("extended_key_usage", ())),  # type: ignore[arg-type]
                   curves, data.get("path_length"))  # type: ignore[arg-type]


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, Profile]:
    with path.open("rb") as f:
        raw = tomllib.load(f)
    profiles = {name: _load_one(name, body) for name, body in raw.items()}
    for required in ("root-ca", "gateway-server", "teacher-key"):
        if required not in profiles:
            raise ProfileError(f"{path}: the profile [{required}] is missing")
    return profiles
