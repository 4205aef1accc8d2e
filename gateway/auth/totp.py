"""TOTP (RFC 6238) second factor: one step of clock skew, a used code is refused.

Attacker-controlled here: the code (must be exactly 6 digits). `now` is passed in so the check is
pure and testable; the caller persists the returned step so the same code cannot be used twice.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

STEP_SECONDS = 30
ISSUER = "Staffroom"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, user_id: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user_id, issuer_name=issuer)


def current_code(secret: str, now: datetime) -> str:
    return pyotp.TOTP(secret).at(now)


def match_step(secret: str, code: str, now: datetime, last_step: int) -> int | None:
    """The time step the code belongs to, or None when wrong, expired or already used.

    Checks the current step and one step either side (clock skew); a step at or before
    `last_step` was already used and is refused.
    """
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    found = None
    for step in (current - 1, current, current + 1):
        # Compare every candidate so timing does not reveal which step matched.
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    if found is None or found <= last_step:
        return None
    return found
