"""Typed audit kinds of the live path: logins, sessions, redirection, posture, call-centre help.

Written by gateway/live/ (tunnel, broker, session, helpdesk) and gateway/api/sessions.py,
gateway/api/help.py. Field names are the stored detail keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from gateway.audit.kinds import HEADER

# --- the tunnel's login (gateway/live/tunnel.py) -------------------------------------------

@dataclass(frozen=True, slots=True)
class SessionLoginAllowed:
    KIND: ClassVar[str] = "session.login"
    OUTCOME: ClassVar[str] = "ok"
    code: str
    serial: str | None
    resume: bool
    reason: str | None = None
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class SessionLoginDenied:
    KIND: ClassVar[str] = "session.login"
    OUTCOME: ClassVar[str] = "denied"
    code: str
    serial: str | None
    resume: bool
    reason: str | None = None  # a revoked key's revocation reason
    rule: str | None = None  # the hours rule that refused the start


@dataclass(frozen=True, slots=True)
class TunnelProtocolError:
    KIND: ClassVar[str] = "tunnel.protocol_error"
    OUTCOME: ClassVar[str] = "denied"
    error: str  # the peer's broken frame, described (≤ 200 characters)


# --- sessions (gateway/live/broker.py, session.py) -----------------------------------------

@dataclass(frozen=True, slots=True)
class SessionStarted:
    KIND: ClassVar[str] = "session.start"
    OUTCOME: ClassVar[str] = "ok"
    desktop: str  # display (":12") or host:port of the desktop attached


@dataclass(frozen=True, slots=True)
class SessionStartFailed:
    KIND: ClassVar[str] = "session.start"
    OUTCOME: ClassVar[str] = "error"
    error: str  # why the desktop could not be attached


@dataclass(frozen=True, slots=True)
class SessionRefused:
    """The login passed, but the key was revoked or the account disabled before it attached."""

    KIND: ClassVar[str] = "session.start"
    OUTCOME: ClassVar[str] = "denied"
    code: str  # "cert-revoked", "disabled", "cert-unknown", "ended"
    stage: str = "attach"


@dataclass(frozen=True, slots=True)
class SessionResumed:
    KIND: ClassVar[str] = "session.resume"
    OUTCOME: ClassVar[str] = "ok"
    remote: str | None


@dataclass(frozen=True, slots=True)
class SessionActivity:
    """A work-hours checkpoint (gateway/reports/hours.py reads these fields)."""

    KIND: ClassVar[str] = "session.activity"
    OUTCOME: ClassVar[str] = "ok"
    started_at: str
    ended_at: str
    duration_seconds: int
    active_minutes: int
    idle_minutes: int


@dataclass(frozen=True, slots=True)
class SessionEnded:
    KIND: ClassVar[str] = "session.end"
    OUTCOME: ClassVar[str] = "ok"
    code: str  # wire.EndCode name, lower case
    reason: str
    bytes: int
    frames: int
    started_at: str
    ended_at: str
    duration_seconds: int
    active_minutes: int
    idle_minutes: int


@dataclass(frozen=True, slots=True)
class SessionTerminated:
    KIND: ClassVar[str] = "session.terminate"
    OUTCOME: ClassVar[str] = "ok"
    session: str
    reason: str


@dataclass(frozen=True, slots=True)
class SessionWatched:
    KIND: ClassVar[str] = "session.watch"
    OUTCOME: ClassVar[str] = "ok"
    session: str


@dataclass(frozen=True, slots=True)
class SessionWatchRefused:
    KIND: ClassVar[str] = "session.watch"
    OUTCOME: ClassVar[str] = "denied"
    session: str
    origin: str  # the foreign Origin header


@dataclass(frozen=True, slots=True)
class RecordingStopped:
    KIND: ClassVar[str] = "recording.failed"
    OUTCOME: ClassVar[str] = "error"
    error: str  # one sentence (disk full, or could not be saved)


# --- redirection (gateway/live/session.py) -------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClipboardCopied:
    KIND: ClassVar[str] = "redirection.clipboard"
    OUTCOME: ClassVar[str] = "ok"
    direction: str  # "to-remote" or "to-local"
    bytes: int


@dataclass(frozen=True, slots=True)
class RedirectionBlocked:
    """A blocked attempt; the kind is `redirection.<channel>` ("clipboard", "viewer_file"…)."""

    OUTCOME: ClassVar[str] = "blocked"
    channel: str = field(metadata=HEADER)
    direction: str | None = None
    bytes: int | None = None
    repeats: int | None = None
    attempt: int = 0
    last_recorded: bool = False  # the 20th: further attempts are not recorded

    @property
    def KIND(self) -> str:
        return f"redirection.{self.channel}"


# --- posture re-checks (gateway/live/posture_watch.py) -------------------------------------

@dataclass(frozen=True, slots=True)
class PostureChecked:
    """One re-check of the agent's report; outcome "ok", "failed", "missing" or "refused"."""

    KIND: ClassVar[str] = "posture.recheck"
    outcome: str = field(metadata=HEADER)
    seq: int | None = None
    reason: str | None = None
    code: str | None = None
    error: str | None = None
    detail: str | None = None
    last_seq: int | None = None
    seconds: int | None = None

    @property
    def OUTCOME(self) -> str:
        return self.outcome


# --- call-centre help (gateway/live/helpdesk.py, gateway/api/help.py) ----------------------

@dataclass(frozen=True, slots=True)
class HelpJoined:
    KIND: ClassVar[str] = "help.join"
    OUTCOME: ClassVar[str] = "ok"
    session: str


@dataclass(frozen=True, slots=True)
class HelpJoinRefused:
    KIND: ClassVar[str] = "help.join"
    OUTCOME: ClassVar[str] = "denied"
    session: str
    origin: str | None = None  # a foreign Origin header
    reason: str | None = None  # why the help cannot be joined now


@dataclass(frozen=True, slots=True)
class HelpRequested:
    KIND: ClassVar[str] = "help.request"
    OUTCOME: ClassVar[str] = "ok"
    helper: str | None
    action: str | None = None  # the teacher's button


@dataclass(frozen=True, slots=True)
class HelpCancelled:
    KIND: ClassVar[str] = "help.cancel"
    OUTCOME: ClassVar[str] = "ok"
    helper: str | None
    action: str | None = None


@dataclass(frozen=True, slots=True)
class HelpControlGiven:
    KIND: ClassVar[str] = "help.control"
    OUTCOME: ClassVar[str] = "ok"
    helper: str | None
    action: str | None = None


@dataclass(frozen=True, slots=True)
class HelpViewOnly:
    KIND: ClassVar[str] = "help.view_only"
    OUTCOME: ClassVar[str] = "ok"
    helper: str | None
    action: str | None = None


@dataclass(frozen=True, slots=True)
class HelpEnded:
    KIND: ClassVar[str] = "help.end"
    OUTCOME: ClassVar[str] = "ok"
    helper: str | None
    action: str | None = None


@dataclass(frozen=True, slots=True)
class HelpLeft:
    KIND: ClassVar[str] = "help.leave"
    OUTCOME: ClassVar[str] = "ok"
    helper: str | None
    action: str | None = None


@dataclass(frozen=True, slots=True)
class HelpInputBlocked:
    KIND: ClassVar[str] = "help.input"
    OUTCOME: ClassVar[str] = "blocked"
    helper: str
    reason: str


@dataclass(frozen=True, slots=True)
class HelpProtocolError:
    KIND: ClassVar[str] = "help.protocol_error"
    OUTCOME: ClassVar[str] = "denied"
    helper: str
    error: str


HELP_STEPS: dict[str, type[HelpRequested | HelpCancelled | HelpControlGiven | HelpViewOnly
                          | HelpEnded | HelpLeft]] = {
    k.KIND: k for k in (HelpRequested, HelpCancelled, HelpControlGiven, HelpViewOnly, HelpEnded,
                        HelpLeft)}
