"""Account lockout after repeated failed logins (pure: counts and `now` in, new state out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class LockState:
    failures: int
    locked_until: datetime | None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def after_failure(state: LockState, now: datetime) -> LockState:
    """One more failure; the MAX_FAILURES-th locks the account for LOCK_FOR."""
    failures = state.failures + 1
    if failures >= MAX_FAILURES:
        return LockState(failures=0, locked_until=now + LOCK_FOR)
    return LockState(failures=failures, locked_until=state.locked_until)


def after_success() -> LockState:
    return LockState(failures=0, locked_until=None)
