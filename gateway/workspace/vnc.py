"""Provider ``vnc``: an existing school desktop at HOST:PORT, with an optional VNC password.

Attacker-controlled here: whatever answers at HOST:PORT — the probe reads only the 12-byte RFB
banner, under a short deadline, and shows the user a fixed sentence, never the peer's bytes.
Only addresses on the board's allow-list (`vnc_allow`) are ever contacted.
"""

from __future__ import annotations

import logging

from gateway.workspace import procs, vnc_allow
from gateway.workspace.base import Assignment, Endpoint, InvalidAssignment, WorkspaceUnavailable
from gateway.workspace.vnc_allow import VncAllowList

log = logging.getLogger(__name__)


class VncProvider:
    """Checks that the assigned desktop answers as an RFB server and hands out its endpoint."""

    def __init__(self, *, probe_timeout: float = 3.0, allowed: VncAllowList | None = None) -> None:
        self.probe_timeout = probe_timeout
        self.allowed = allowed or VncAllowList.default()

    async def attach(self, user_id: str, assignment: Assignment) -> Endpoint:
        if assignment.provider != "vnc" or assignment.host is None or assignment.port is None:
            raise InvalidAssignment("This session is not assigned an existing desktop.")
        host, port = assignment.host, assignment.port
        try:
            address, entry = await vnc_allow.check(self.allowed, host, port)
        except InvalidAssignment:
            log.warning("user %s: desktop %s:%d is not on the allow-list", user_id, host, port)
            raise
        banner = await procs.probe_rfb(address, port, self.probe_timeout)
        if banner is None:
            log.warning("user %s: desktop %s:%d is not answering RFB", user_id, host, port)
            raise WorkspaceUnavailable.at(host, port)
        return Endpoint(address, port, assignment.password, None,
                        allow_none_auth=entry.none_auth)

    async def stop(self, user_id: str) -> None:
        """Nothing to stop: the school runs this desktop, not the gateway."""

    async def shutdown(self) -> None:
        """Nothing to stop: the school runs this desktop, not the gateway."""
