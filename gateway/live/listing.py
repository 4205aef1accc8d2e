"""What operators see of live sessions: one summary a session, of this node and of every node.

Attacker-controlled here: the posture report's OS and product names (from the agent, printable
and at most gateway.wire.posture.MAX_TEXT characters each, at most MAX_PRODUCTS products), copied
into the summary line as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.live.registry import SessionRegistry
from gateway.wire.posture import PostureReport

if TYPE_CHECKING:
    from gateway.live.session import LiveSession


@dataclass(frozen=True, slots=True)
class SessionSummary:
    id: str
    user: str
    school: str | None
    started_at: str
    remote: str | None
    posture: str
    attached: bool
    bytes_sent: int | None  # None: held by another node (only its node counts bytes)
    frames_sent: int | None
    node: str = "local"


def posture_summary(report: PostureReport | None) -> str:
    """One line for session listings: OS and antivirus products with their definition dates."""
    if report is None:
        return ""
    products = ", ".join(
        a.product + (f" ({a.definitions_time:%Y-%m-%d})" if a.definitions_time else "")
        for a in report.antivirus) or "no antivirus"
    return f"{report.os} {report.os_version}; {products}"


def local_summaries(sessions: Iterable[LiveSession], node: str) -> list[SessionSummary]:
    """This node's live sessions."""
    return [SessionSummary(s.id, s.user_id, s.school, s.started_at.isoformat(), s.remote,
                           s.posture, s.ws is not None, s.bytes_sent, s.frames_sent, node)
            for s in sessions if not s.ended]


def all_summaries(sessions: Iterable[LiveSession], node: str, registry: SessionRegistry,
                  school: str | None = None) -> list[SessionSummary]:
    """Every node's live sessions (the registry), this node's with their live counters."""
    local = {s.id: s for s in local_summaries(sessions, node)}
    out = [local.pop(r.id, None) or SessionSummary(
               r.id, r.user_id, r.school, r.started_at.isoformat(), r.remote, r.posture,
               r.state == "attached", None, None, r.node)
           for r in registry.rows(school)]
    out += [s for s in local.values() if school is None or s.school == school]
    return out
