"""Provider ``vnc``: an existing school desktop at HOST:PORT, with an optional VNC password.

Attacker-controlled here: whatever answers at HOST:PORT — the probe reads only the 12-byte RFB
banner, under a short deadline, and shows the user a fixed sentence, never the peer's bytes.
"""

from __future__ import annotations

import logging

from gateway.workspace import procs
from gateway.workspace.base import Assignment, Endpoint, InvalidAssignment, WorkspaceUnavailable

log = logging.getLogger(__name__)


class VncProvider:
    """Checks that the assigned desktop answers as an RFB server and hands out its endpoint."""

    def __init__(self, *, probe_timeout: float = 3.0) -> None:
        self.probe_timeout = probe_timeout

    async def attach(self, user_id: str, assignment: Assignment) -> Endpoint:
        if assignment.provider != "vnc" or assignment.host is None or assignment.port is None:
            raise InvalidAssignment("This session is not assigned an existing desktop.")
        host, port = assignment.host, assignment.port
        banner = await procs.probe_rfb(host, port, self.probe_timeout)
        if banner is None:
            log.warning("user %s: desktop %s:%d is not answering RFB", user_id, host, port)
            raise WorkspaceUnavailable.at(host, port)
        return Endpoint(host, port, assignment.password, None)

    async def stop(self, user_id: str) -> None:
        """Nothing to stop: the school runs this desktop, not the gateway."""

    async def shutdown(self) -> None:
        """Nothing to stop: the school runs this desktop, not the gateway."""
