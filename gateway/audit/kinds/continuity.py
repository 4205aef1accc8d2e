"""Typed audit kinds of desktops and sessions that outlive a gateway process (issue 12, C).

Written by gateway/app.py (the desktops registry's hooks) and gateway/live/broker.py (a resume
taken from the Store by a gateway that did not issue it). Field names are the stored details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class DesktopAdopted:
    """A desktop left running by a gateway that stopped or died is managed by this node now."""

    KIND: ClassVar[str] = "workspace.adopt"
    OUTCOME: ClassVar[str] = "ok"
    display: str
    from_node: str
    node: str


@dataclass(frozen=True, slots=True)
class DesktopForgotten:
    """A recorded desktop no longer runs whole (or its pid was reused): ended and forgotten."""

    KIND: ClassVar[str] = "workspace.adopt"
    OUTCOME: ClassVar[str] = "failed"
    display: str
    from_node: str
    reason: str


@dataclass(frozen=True, slots=True)
class SessionRecovered:
    """A session whose gateway died, resumed through this node from its Store resume ticket."""

    KIND: ClassVar[str] = "session.recover"
    OUTCOME: ClassVar[str] = "ok"
    from_node: str
    node: str
    desktop: str
