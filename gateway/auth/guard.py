"""The gateway's login throttle in use: one LoginThrottle per gateway, shared by the admin API
login, the console sign-in and the tunnel's Hello, with the audit records it owes.

Attacker-controlled here: the source address and the account name of an attempt. Limits: those
of gateway.auth.throttle; a refusal is audited only when it opens a burst of refusals, a lock
once when it is set, so a storm of attempts writes a bounded number of audit records.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.audit.kinds import AccountLocked, LoginThrottled, Who, to_event
from gateway.auth.throttle import LoginThrottle, Verdict


def throttle_of(extras: dict[str, Any]) -> LoginThrottle:
    found = extras.get("login_throttle")
    if not isinstance(found, LoginThrottle):
        found = extras["login_throttle"] = LoginThrottle()
    return found


async def admit(c: Any, address: str | None, account: str, *, via: str) -> Verdict:
    """May this login attempt go ahead? `c` is the GatewayContext."""
    verdict = throttle_of(c.extras).check(address or "?", account, time.monotonic())
    if not verdict.allowed and verdict.new_burst:
        who = Who(actor=account or None, subject=account or None, source=address)
        await c.audit.aappend(to_event(LoginThrottled(
            via=via, scope=verdict.scope, code=verdict.code, retry_after=verdict.retry_after),
            who))
    return verdict


async def settle(c: Any, address: str | None, account: str, *, ok: bool, via: str,
                 school: str | None = None) -> bool:
    """Count the attempt's outcome; a failure that locks the account at this address is
    audited (`account.locked`, with the address and how long) and returns True."""
    throttle = throttle_of(c.extras)
    if ok:
        throttle.succeeded(address or "?", account, time.monotonic())
        return False
    locked = throttle.failed(address or "?", account, time.monotonic())
    if locked:
        who = Who(actor=account or None, subject=account or None, school=school,
                  source=address)
        await c.audit.aappend(to_event(AccountLocked(
            via=via, scope="account-address", seconds=int(throttle.limits.lock_for)), who))
    return locked
