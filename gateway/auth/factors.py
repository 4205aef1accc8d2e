"""Checks an account's password and TOTP factors (pure but slow: run it in gateway.auth.pool).

Attacker-controlled here: the account name, the password and the code offered. Every refusal
before the factors pass is the same answer with the same work (no oracle on whether an account
exists, is a teacher, is disabled or has TOTP); only someone who knows the factors learns that
the account is disabled. Throttling and lockout are per address in gateway.auth.throttle, so a
failure here changes nothing stored. The outcome carries the account to store after a success:
its TOTP step (a used code is refused) and, for an old hash, the password hashed again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.auth import lockout, passwords, totp
from gateway.store.base import User


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    ok: bool
    code: str  # "ok", "bad-credentials", "locked", "disabled", "totp-not-enrolled", "totp-reused"
    reason: str  # one sentence for the person logging in
    user: User | None  # the account with its new TOTP step / password hash, to be stored
    rehashed: bool = False  # an older password hash was replaced by an argon2id one


BAD = "The user id, password or code is wrong."


def authenticate(
    user: User | None,
    *,
    password: str | None,
    totp_code: str | None,
    factors: Collection[str],
    now: datetime,
) -> AuthOutcome:
    """All of `factors` must pass. Unknown accounts do the same work as known ones."""
    if user is None:
        passwords.verify_password(password or "", None)
        return AuthOutcome(False, "bad-credentials", BAD, None)
    password_ok = "password" not in factors or (
        password is not None and passwords.verify_password(password, user.password_hash))
    new_step = user.totp_last_step
    if "totp" in factors:
        if user.totp_secret is None:
            if password_ok:
                return AuthOutcome(False, "totp-not-enrolled", "No authenticator app is "
                                   "enrolled for this account: ask your IT lead.", None)
            return AuthOutcome(False, "bad-credentials", BAD, None)
        step = totp.match_step(user.totp_secret, totp_code or "", now, user.totp_last_step)
        if step is None:
            reused = totp.match_step(user.totp_secret, totp_code or "", now, -1) is not None
            if password_ok and reused:
                return AuthOutcome(False, "totp-reused", "This code was already used: wait "
                                   "for the next code in your authenticator app.", None)
            return AuthOutcome(False, "bad-credentials", BAD, None)
        new_step = step
    if not password_ok:
        return AuthOutcome(False, "bad-credentials", BAD, None)
    # The factors passed: only now may the answer say more about the account.
    if lockout.LockState(user.failed_logins, user.locked_until).is_locked(now):
        return AuthOutcome(False, "locked", "This account is locked: wait 15 minutes or ask "
                           "your IT lead to unlock it.", None)
    if user.disabled:
        return AuthOutcome(False, "disabled", "This account is disabled: ask your IT lead.",
                           None)
    updated = replace(user, failed_logins=0, locked_until=None, totp_last_step=new_step)
    rehashed = False
    if "password" in factors and password is not None and \
            passwords.needs_rehash(user.password_hash):
        updated, rehashed = replace(updated, password_hash=passwords.rehash(password)), True
    return AuthOutcome(True, "ok", "", updated, rehashed)
