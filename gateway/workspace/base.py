"""Workspace seam: where a teacher's session gets its desktop, and the errors users see.

Attacker-controlled here: the user id (it ends up in a filesystem path) — `check_user_id` allows
only 1-64 characters of [A-Za-z0-9._@-] and no leading dot. Assignments come from policy (trusted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Protocol

ProviderName = Literal["xvnc", "vnc"]
PROVIDERS: tuple[ProviderName, ...] = ("xvnc", "vnc")

_USER_ID = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}")


class WorkspaceError(Exception):
    """Base class; ``str(error)`` is one sentence fit to show the teacher or the admin."""


class WorkspaceUnavailable(WorkspaceError):
    """An existing desktop does not answer (provider ``vnc``)."""

    @classmethod
    def at(cls, host: str, port: int) -> WorkspaceUnavailable:
        return cls(
            f"The school desktop at {host}:{port} is not answering: "
            "ask your school's IT lead to check it."
        )


class WorkspaceStartFailed(WorkspaceError):
    """A per-user desktop (provider ``xvnc``) could not be started."""

    def __init__(self, sentence: str | None = None) -> None:
        super().__init__(
            sentence
            or "Your desktop could not be started: please try again in a minute, and tell "
            "your school's IT lead if it keeps happening."
        )


class InvalidAssignment(WorkspaceError):
    """The policy's workspace settings or the user id cannot be used."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the RFB client connects. The password never leaves the gateway (repr hides it)."""

    host: str
    port: int
    password: str | None = field(default=None, repr=False)
    display: str | None = None  # ":N" for a gateway-started Xvnc, None for an existing desktop
    path: str | None = None  # a Unix socket (gateway-started Xvnc): then host/port are unused
    allow_none_auth: bool = False  # RFB security type None accepted (allow-list entry says so)


@dataclass(frozen=True, slots=True)
class Assignment:
    """Which workspace a session gets, from policy: a per-user Xvnc or an existing desktop."""

    provider: ProviderName = "xvnc"
    host: str | None = None
    port: int | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise InvalidAssignment(
                f"The workspace provider must be one of {', '.join(PROVIDERS)}, "
                f"not {self.provider!r}."
            )
        if self.provider == "vnc":
            if not self.host or self.port is None:
                raise InvalidAssignment("A 'vnc' workspace needs both a host and a port.")
            if not 1 <= self.port <= 65535:
                raise InvalidAssignment(f"The workspace port {self.port} is not a TCP port.")


def check_user_id(user_id: str) -> str:
    """Return ``user_id`` if it is safe as a directory name, else raise InvalidAssignment."""
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        raise InvalidAssignment("This user name cannot be given a desktop: ask your IT lead.")
    return user_id


class WorkspaceProvider(Protocol):
    """One kind of workspace. Implementations: XvncProvider, VncProvider."""

    async def attach(self, user_id: str, assignment: Assignment) -> Endpoint: ...

    async def stop(self, user_id: str) -> None: ...

    async def shutdown(self) -> None: ...
