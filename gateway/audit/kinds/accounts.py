"""Typed audit kinds of accounts: operator sign-in, users, login throttling, keys, access.

Written by gateway/api/ (session, users, keys, common), gateway/console/ (signin, cookie),
gateway/auth/guard.py, gateway/live/tunnel.py and gateway/setup.py. Field names are the stored
detail keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

# --- operators (gateway/api/session.py, gateway/console/signin.py) -------------------------


@dataclass(frozen=True, slots=True)
class OperatorLoggedIn:
    KIND: ClassVar[str] = "operator.login"
    OUTCOME: ClassVar[str] = "ok"
    expires_at: str
    via: str | None = None  # "console" for the console's cookie sign-in


@dataclass(frozen=True, slots=True)
class OperatorLoginRefused:
    KIND: ClassVar[str] = "operator.login"
    OUTCOME: ClassVar[str] = "denied"
    code: str
    via: str


@dataclass(frozen=True, slots=True)
class OperatorLoggedOut:
    KIND: ClassVar[str] = "operator.logout"
    OUTCOME: ClassVar[str] = "ok"
    via: str | None = None


@dataclass(frozen=True, slots=True)
class OperatorSessionsEnded:
    """An operator's other signed-in sessions ended after a password or TOTP change."""

    KIND: ClassVar[str] = "operator.sessions_ended"
    OUTCOME: ClassVar[str] = "ok"
    count: int
    why: str  # "password" or "totp"


@dataclass(frozen=True, slots=True)
class ConsoleRequestRefused:
    KIND: ClassVar[str] = "console.request"
    OUTCOME: ClassVar[str] = "denied"
    code: str
    method: str
    path: str


@dataclass(frozen=True, slots=True)
class AccessDenied:
    KIND: ClassVar[str] = "access.denied"
    OUTCOME: ClassVar[str] = "denied"
    action: str
    reason: str


# --- login throttling (gateway/auth/guard.py) ----------------------------------------------

@dataclass(frozen=True, slots=True)
class LoginThrottled:
    KIND: ClassVar[str] = "login.throttled"
    OUTCOME: ClassVar[str] = "denied"
    via: str
    scope: str
    code: str
    retry_after: int


@dataclass(frozen=True, slots=True)
class AccountLocked:
    KIND: ClassVar[str] = "account.locked"
    OUTCOME: ClassVar[str] = "ok"
    via: str
    scope: str
    seconds: int


# --- users (gateway/api/users.py, gateway/setup.py) ----------------------------------------

@dataclass(frozen=True, slots=True)
class UserAdded:
    KIND: ClassVar[str] = "user.add"
    OUTCOME: ClassVar[str] = "ok"
    role: str


@dataclass(frozen=True, slots=True)
class UsersImported:
    KIND: ClassVar[str] = "user.import"
    OUTCOME: ClassVar[str] = "ok"
    created: list[str]
    unchanged: list[str]


@dataclass(frozen=True, slots=True)
class UserDisabled:
    KIND: ClassVar[str] = "user.disable"
    OUTCOME: ClassVar[str] = "ok"


@dataclass(frozen=True, slots=True)
class PasswordSet:
    KIND: ClassVar[str] = "user.set_password"
    OUTCOME: ClassVar[str] = "ok"
    self: bool  # the operator changed their own


@dataclass(frozen=True, slots=True)
class PasswordChangeRefused:
    KIND: ClassVar[str] = "user.password"
    OUTCOME: ClassVar[str] = "denied"
    code: str = "bad-current-password"


@dataclass(frozen=True, slots=True)
class TotpEnrolled:
    KIND: ClassVar[str] = "user.enroll_totp"
    OUTCOME: ClassVar[str] = "ok"


@dataclass(frozen=True, slots=True)
class AuthenticatorChangeRefused:
    KIND: ClassVar[str] = "user.authenticator"
    OUTCOME: ClassVar[str] = "denied"
    code: str = "bad-current-password"


@dataclass(frozen=True, slots=True)
class PasswordRehashed:
    KIND: ClassVar[str] = "user.password_rehashed"
    OUTCOME: ClassVar[str] = "ok"
    scheme: str = "argon2id"


# --- keys (gateway/api/keys.py) ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KeyIssued:
    KIND: ClassVar[str] = "key.issue"
    OUTCOME: ClassVar[str] = "ok"
    serial: str
    not_after: str


@dataclass(frozen=True, slots=True)
class KeyIssueRefused:
    KIND: ClassVar[str] = "key.issue"
    OUTCOME: ClassVar[str] = "denied"
    code: str = "bad-proof-of-possession"


@dataclass(frozen=True, slots=True)
class KeyRevoked:
    KIND: ClassVar[str] = "key.revoke"
    OUTCOME: ClassVar[str] = "ok"
    serial: str
    reason: str
