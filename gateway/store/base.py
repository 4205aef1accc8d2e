"""The storage seam: everything the gateway keeps in its state database.

SQLite implements it for one machine (`gateway.store.sqlite`); a PostgreSQL backend implements the
same Protocol when a city runs several gateway nodes (ARCHITECTURE.md, "State and scale").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.store.desktops import DesktopRecord, ResumeTicket


class StoreError(Exception):
    """A storage operation was refused; the message is one sentence for the user."""


class Conflict(StoreError):
    """The thing already exists or is already in the requested state."""


class NotFound(StoreError):
    """The thing does not exist."""


class StoreUnavailable(StoreError):
    """The state database cannot be written (disk full, read-only, I/O error) or read."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    role: str
    school: str | None
    password_hash: str | None = None
    disabled: bool = False
    must_change_password: bool = False
    totp_secret: str | None = None
    totp_last_step: int = -1
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OperatorSession:
    token_hash: str
    user_id: str
    created_at: datetime
    expires_at: datetime  # the console's sessions slide this forward on use
    revoked: bool = False
    kind: str = "bearer"  # "bearer" (CLI, Authorization header) or "console" (cookie + CSRF)
    csrf: str | None = None  # console only: the per-session CSRF token the page sends back


@dataclass(frozen=True, slots=True)
class CertRecord:
    serial: str  # lower-case hex, no separators
    user_id: str
    school: str | None
    not_before: datetime
    not_after: datetime
    pem: str
    issued_by: str
    issued_at: datetime
    revoked_at: datetime | None = None
    revoke_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Nonce:
    value: str
    purpose: str
    user_id: str | None
    expires_at: datetime
    bound_to: str | None = None  # e.g. the operator who asked for a key-issue challenge


@dataclass(frozen=True, slots=True)
class WorkspaceAssignment:
    user_id: str
    provider: str  # "xvnc" | "vnc"
    host: str | None = None
    port: int | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """An officer's request to replay or export one recording (two-person rule). A second,
    different officer approves or declines it; an approval lets the requester, and only them,
    open that one recording until `expires_at`."""

    id: str
    recording_id: str
    purpose: str  # "replay" | "export" (an export approval also allows replaying it)
    requester: str
    reason: str
    subject: str  # whose recording (the teacher)
    school: str | None
    created_at: datetime
    status: str = "pending"  # "pending" | "approved" | "declined"
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    expires_at: datetime | None = None  # approved only


@dataclass(frozen=True, slots=True)
class LiveSessionRow:
    """One live session as every node sees it (the registry; the node holding it keeps it)."""

    id: str
    user_id: str
    school: str | None
    node: str  # the gateway node that holds the session (`gateway --node`)
    started_at: datetime
    cert_serial: str | None
    remote: str | None
    posture: str = ""
    state: str = "attached"  # "attached" | "detached" (the tunnel dropped; within the grace)
    end_reason: str | None = None  # set when another node asked the holder to end it


class Store(Protocol):
    """State database operations. Each call is one transaction; writes are durable on return."""

    # accounts
    def add_user(self, user: User) -> None: ...
    def add_users(self, users: Sequence[User]) -> None: ...
    def get_user(self, user_id: str) -> User | None: ...
    def list_users(self, school: str | None = None) -> list[User]: ...
    def update_user_fields(self, user_id: str, changes: Mapping[str, object]) -> User:
        """Set only these columns (never the whole row, so nothing is written back stale);
        returns the row as it is now. Raises NotFound."""
        ...

    def record_login_success(self, user_id: str, totp_step: int | None) -> bool:
        """Compare-and-set after a login passed its factors: clear the failure count, and take
        the TOTP step. Applies only if the account is still enabled and (when a code was used)
        its step is newer than the last one stored; False when a concurrent change won."""
        ...

    def record_login_failure(self, user_id: str, failed_logins: int,
                             locked_until: datetime | None) -> None:
        """Set the lockout columns only (a failed login never touches anything else)."""
        ...

    def count_users(self) -> int: ...

    # operator sessions (bearer tokens of `staffroom login`, console cookies)
    def add_operator_session(self, session: OperatorSession) -> None: ...
    def get_operator_session(self, token_hash: str) -> OperatorSession | None: ...
    def revoke_operator_session(self, token_hash: str) -> None: ...
    def touch_operator_session(self, token_hash: str, expires_at: datetime) -> None:
        """Move a live session's expiry (the console's sliding 30 minutes)."""
        ...
    def revoke_user_operator_sessions(self, user_id: str, keep: str | None = None) -> int:
        """Revoke every live operator session of `user_id` but `keep` (a token hash); the
        number revoked."""
        ...

    # single-use nonces (login challenges, key-issue challenges)
    def add_nonce(self, nonce: Nonce) -> None: ...
    def take_nonce(self, value: str, purpose: str, now: datetime) -> Nonce | None:
        """Remove and return the nonce if it exists, has this purpose and has not expired."""
        ...

    # certificates
    def add_cert(self, cert: CertRecord) -> None: ...
    def get_cert(self, serial: str) -> CertRecord | None: ...
    def list_certs(
        self, user_id: str | None = None, school: str | None = None
    ) -> list[CertRecord]: ...
    def revoke_cert(self, serial: str, reason: str, at: datetime) -> None: ...
    def next_crl_number(self) -> int: ...

    # workspaces
    def set_assignment(self, assignment: WorkspaceAssignment) -> None: ...
    def get_assignment(self, user_id: str) -> WorkspaceAssignment | None: ...

    # two-person replay of recordings
    def add_replay_request(self, request: ReplayRequest) -> None: ...
    def get_replay_request(self, request_id: str) -> ReplayRequest | None: ...
    def list_replay_requests(self, school: str | None = None) -> list[ReplayRequest]: ...
    def decide_replay_request(self, decided: ReplayRequest) -> None:
        """Store an approval or refusal; Conflict if the request is no longer pending."""
        ...

    def find_approval(self, recording_id: str, requester: str, purposes: Sequence[str],
                      now: datetime) -> ReplayRequest | None:
        """An approved, unexpired request of `requester` for this recording and purpose."""
        ...

    # desktop accounts: one Unix uid per teacher, stable for ever once given
    def desktop_uid(self, user_id: str) -> int | None: ...
    def allocate_desktop_uid(self, user_id: str, first: int, last: int,
                             unusable: Callable[[int], bool]) -> int:
        """The user's uid, or the lowest one in first..last that no user holds and
        ``unusable`` accepts. Raises StoreError when the range is used up."""
        ...

    # Desktops that outlive a gateway process, and resume rights that outlive the node that
    # issued them (gateway.store.desktops; docs/ADMINS.md, "Gateway restarts").
    def put_desktop(self, record: DesktopRecord) -> None:
        """Record (or replace) the user's running desktop."""
    def list_desktops(self, host: str) -> list[DesktopRecord]:
        """Every recorded desktop on ``host``, by user."""
    def get_desktop(self, user_id: str) -> DesktopRecord | None: ...
    def claim_desktop(self, user_id: str, node: str) -> None:
        """The desktop is now managed by ``node`` (re-adopted after its node died)."""
    def drop_desktop(self, user_id: str, runtime_dir: str | None = None) -> None:
        """Forget the user's desktop (only the one at ``runtime_dir`` when given)."""
    def put_resume_ticket(self, ticket: ResumeTicket) -> None:
        """Record the session's resume right, replacing its previous one."""
    def find_resume_ticket(self, digest: str, now: float) -> ResumeTicket | None:
        """The unexpired ticket for this secret digest, without taking it."""
    def take_resume_ticket(self, digest: str, now: float) -> ResumeTicket | None:
        """Atomically remove and return the unexpired ticket (single use across nodes);
        expired tickets are deleted on the way."""
    def extend_resume_tickets(self, node: str, session_ids: Sequence[str], now: float) -> None:
        """Connected sessions of ``node``: their tickets expire ``grace`` after ``now``."""
    def drop_resume_ticket(self, session_id: str, node: str | None = None) -> None:
        """The session ended (on ``node``: a ticket another node has issued since stays)."""
    # live sessions of every node (gateway.live.registry keeps this node's rows)
    def add_live_session(self, row: LiveSessionRow) -> None: ...
    def set_live_session_state(self, session_id: str, state: str,
                               node: str | None = None) -> None:
        """`node`: only if that node holds it (another may have taken the session over)."""
        ...

    def remove_live_session(self, session_id: str, node: str | None = None) -> None:
        """`node`: only that node's row (a node that took the session over replaced it)."""
        ...

    def get_live_session(self, session_id: str) -> LiveSessionRow | None: ...
    def list_live_sessions(self, school: str | None = None,
                           node: str | None = None) -> list[LiveSessionRow]: ...
    def request_live_session_end(self, session_id: str, reason: str) -> bool:
        """Mark a session to be ended by its node (which also hears it on the node bus);
        False when there is no such live session."""
        ...

    def clear_node_live_sessions(self, node: str) -> int:
        """A node starting up drops the rows it left behind; the number dropped."""
        ...

    def close(self) -> None: ...
