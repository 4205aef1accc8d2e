"""The resume secrets of this node's sessions, and which session a secret names.

At every welcome the broker hands the agent a fresh resume secret (the previous one stops
working). It is kept only as SHA-256: in memory, naming the session live on this node, and as a
ticket in the Store (resume_store), so that a session outlives the gateway process holding it: a
restarted node, or another node sharing the database, resumes it on the desktop it left running.

Attacker-controlled here: the resume secret from the agent's Hello — only its SHA-256 is looked
up; what it names is honoured only after the login decision (gateway.live.login: same user and
certificate, a session with no tunnel attached, a fresh key signature), and a ticket only until
it expires (the reconnect grace).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from gateway.live.login import ResumeTarget
from gateway.live.resume_store import ResumeTickets, TicketStore, digest
from gateway.store.desktops import ResumeTicket

if TYPE_CHECKING:
    from gateway.live.session import LiveSession


class ResumeRights:
    """This node's resume secrets (SHA-256 -> session id) and their tickets in the Store."""

    def __init__(self, store: TicketStore, node: str) -> None:
        self._ids: dict[str, str] = {}  # SHA-256 of a resume secret -> session id
        # The same rights in the Store, so a session outlives this process (resume_store).
        self.tickets = ResumeTickets(store, node)

    def target(self, secret: str | None,
               sessions: Mapping[str, LiveSession]) -> ResumeTarget | None:
        """The session a resume secret names: live here (in ``sessions``), or held by a gateway
        process that died, from its unexpired ticket in the Store."""
        session_id = self._ids.get(digest(secret)) if secret else None
        s = sessions.get(session_id or "")
        if s is None and secret and session_id is None:
            ticket = self.tickets.find(secret)
            if ticket is not None and ticket.session_id not in sessions:
                return ResumeTarget(ticket.session_id, ticket.user_id, ticket.cert_serial,
                                    connected=False)
        if s is None or s.ended:
            return None
        return ResumeTarget(s.id, s.user_id, s.cert_serial, connected=s.ws is not None)

    def renew(self, session: LiveSession, fence: int,
              connected: Callable[[], list[str]]) -> str:
        """A fresh secret for the session (the previous one stops working), also in the Store;
        ``connected`` names the sessions whose tickets are kept from expiring."""
        self._forget(session.id)
        secret = secrets.token_urlsafe(32)
        self._ids[digest(secret)] = session.id
        self.tickets.issue(secret, session_id=session.id, user_id=session.user_id,
                           cert_serial=session.cert_serial, fence=fence,
                           grace=session.limits.reconnect_grace)
        self.tickets.keep_fresh(connected)
        return secret

    def take(self, secret: str) -> ResumeTicket | None:
        """The Store's ticket for the secret, removed: a secret resumes once, on one node."""
        return self.tickets.take(secret)

    def drop(self, session_id: str) -> None:
        """The session ended here: its secret and its ticket stop working."""
        self._forget(session_id)
        self.tickets.drop(session_id)

    async def stop(self) -> None:
        await self.tickets.stop()

    def _forget(self, session_id: str) -> None:
        for secret_digest, sid in list(self._ids.items()):
            if sid == session_id:
                del self._ids[secret_digest]
