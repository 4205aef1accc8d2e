"""Re-checks a login against the state as it is *now*, not as it was when the login was decided.

A login reads the account, then spends milliseconds (audit) to seconds (a cold desktop start)
before the session is live; an officer may revoke the key or disable the account meanwhile.
So the account write that follows a login is a compare-and-set (never the row read earlier,
written back), and the certificate and account are read again when the session attaches.

Attacker-controlled here: nothing new — the user id and serial were checked by the login
decision; this only reads the store again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.live.login import LoginDecision
from gateway.store.base import Store
from gateway.store.logins import CHANGED, record_login

REVOKED = "Your key has been revoked: ask your school's IT lead for a new one."
DISABLED = "This account is disabled: ask your IT lead."


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str  # "cert-revoked", "disabled", "cert-unknown"
    reason: str  # one sentence for the teacher


def record_decision(store: Store, decision: LoginDecision, *, totp_used: bool) -> LoginDecision:
    """`record_login` for the tunnel: a lost compare-and-set turns an allowed login denied."""
    if record_login(store, decision.allowed, decision.user, totp_used=totp_used):
        return decision
    return replace(decision, allowed=False, code="account-changed", reason=CHANGED)


def attach_refusal(store: Store, user_id: str, cert_serial: str | None) -> Refusal | None:
    """Why a session that passed its login may no longer attach, read from the store now."""
    user = store.get_user(user_id)
    if user is None or user.disabled:
        return Refusal("disabled", DISABLED)
    if cert_serial is not None:
        record = store.get_cert(cert_serial)
        if record is None or record.user_id != user_id:
            return Refusal("cert-unknown", "The gateway has no record of this key: ask your "
                           "IT lead to issue it again.")
        if record.revoked_at is not None:
            return Refusal("cert-revoked", REVOKED)
    return None
