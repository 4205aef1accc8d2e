"""Checks an account's password and TOTP factors and updates its lockout state (pure).

Attacker-controlled here: the password and code offered. Every failure counts towards lockout;
the outcome carries the updated account for the caller to store (and audit) before answering.
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
    user: User | None  # the account with its new lockout/TOTP state, to be stored


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
    state = lockout.LockState(user.failed_logins, user.locked_until)
    if state.is_locked(now):
        return AuthOutcome(
            False, "locked",
            "This account is locked after too many failed attempts: wait 15 minutes or ask "
            "your IT lead to unlock it.", None,
        )
    if user.disabled:
        return AuthOutcome(False, "disabled", "This account is disabled: ask your IT lead.", None)
    ok, new_step, code, reason = True, user.totp_last_step, "ok", ""
    if "password" in factors and not (
        password is not None and passwords.verify_password(password, user.password_hash)
    ):
        ok, code, reason = False, "bad-credentials", BAD
    if "totp" in factors:
        if user.totp_secret is None:
            ok, code = False, "totp-not-enrolled"
            reason = "No authenticator app is enrolled for this account: ask your IT lead."
        else:
            step = totp.match_step(user.totp_secret, totp_code or "", now, user.totp_last_step)
            if step is None:
                reused = totp.match_step(user.totp_secret, totp_code or "", now, -1) is not None
                if ok:
                    code = "totp-reused" if reused else "bad-credentials"
                    reason = (
                        "This code was already used: wait for the next code in your "
                        "authenticator app." if reused else BAD
                    )
                ok = False
            else:
                new_step = step
    if not ok:
        new_state = lockout.after_failure(state, now)
        locked = new_state.locked_until is not None and new_state.locked_until != user.locked_until
        updated = replace(
            user, failed_logins=new_state.failures, locked_until=new_state.locked_until
        )
        if locked:
            code, reason = "locked", (
                "Too many failed attempts: this account is now locked for 15 minutes."
            )
        return AuthOutcome(False, code, reason, updated)
    updated = replace(user, failed_logins=0, locked_until=None, totp_last_step=new_step)
    return AuthOutcome(True, "ok", "", updated)
