"""Stores what a login changed in an account, field by field, never the row read earlier.

A login reads the account, checks its factors, then writes the new lockout and TOTP state. An
officer may disable the account in between, or a second login may use the same TOTP code: so a
passed login is a compare-and-set, and a failed one writes the lockout columns only.
"""

from __future__ import annotations

from gateway.store.base import Store, User

CHANGED = ("The account changed while you were signing in (a code was used twice, or the "
           "account was disabled): try again, and ask your IT lead if it keeps happening.")


def record_login(store: Store, ok: bool, updated: User | None, *, totp_used: bool) -> bool:
    """Store a login's outcome. On success a compare-and-set (the account is still enabled;
    the TOTP step is newer than any stored), on failure only the lockout columns. False: a
    concurrent change won, and the login must be refused."""
    if updated is None:
        return True
    if ok:
        return store.record_login_success(updated.id,
                                          updated.totp_last_step if totp_used else None)
    store.record_login_failure(updated.id, updated.failed_logins, updated.locked_until)
    return True
