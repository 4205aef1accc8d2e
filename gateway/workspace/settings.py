"""What a teacher's policy decides about her desktop: the session command, the browser's start
page, the school systems it may reach, the home's size, printing, the clipboard, the idle stop.

Each desktop starts with its own user's settings (policy keys workspace.* and
redirection.printing / redirection.clipboard), so a school's or a teacher's policy file applies
to her desktop as `staffroom policy explain` says; a running desktop keeps the settings it
started with until it stops. The workspace package does not read policy: the gateway maps a
user's policy to these (gateway.live.desktop_policy) and hands the manager a lookup.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.workspace.base import InvalidAssignment

DEFAULT_HOME_QUOTA = 2 * 1024**3  # policies/default.toml: workspace.home_quota = "2GiB"
DEFAULT_STOP_AFTER = 900.0


@dataclass(frozen=True, slots=True)
class DesktopSettings:
    session_command: tuple[str, ...]
    home_url: str = ""
    allowed_hosts: tuple[str, ...] = ()
    home_quota_bytes: int | None = DEFAULT_HOME_QUOTA
    printing: bool = False
    clipboard: bool = False
    stop_unattached_after: float = DEFAULT_STOP_AFTER

    @classmethod
    def of(cls, session_command: Sequence[str] | str, *, home_url: str = "",
           allowed_hosts: Sequence[str] = (), home_quota_bytes: int | None = DEFAULT_HOME_QUOTA,
           printing: bool = False, clipboard: bool = False,
           stop_unattached_after: float = DEFAULT_STOP_AFTER) -> DesktopSettings:
        """Settings with the command split like a shell (InvalidAssignment if it is empty)."""
        command = (shlex.split(session_command) if isinstance(session_command, str)
                   else tuple(session_command))
        if not command:
            raise InvalidAssignment("The desktop session command is empty.")
        return cls(tuple(command), home_url, tuple(allowed_hosts), home_quota_bytes, printing,
                   clipboard, stop_unattached_after)


#: Looks up a user's settings (the gateway resolves her policy); raises WorkspaceError to refuse.
SettingsLookup = Callable[[str], DesktopSettings]
