"""Resume rights in the Store, so a session outlives the gateway process that held it.

At every welcome the broker issues a resume secret; its SHA-256 goes to the Store as a
`ResumeTicket` with the session, user, key serial, fence, grace and an expiry. While the agent is
connected the node keeps the expiry ``grace`` seconds ahead (one UPDATE per node every
`HEARTBEAT` s), so when the node dies the ticket lapses at most `HEARTBEAT` s later than a
drop on a live node would have. A restarted node, or another node sharing the database, accepts
the agent's resume by *taking* the ticket (DELETE ... RETURNING: single use across nodes).

Attacker-controlled here: the resume secret from the agent's Hello — only its SHA-256 is looked
up; what it names is honoured only after the login decision (same user and key, a fresh key
signature, posture) and only until the ticket expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.store.base import StoreError
from gateway.store.desktops import ResumeTicket

log = logging.getLogger(__name__)

HEARTBEAT = 5.0  # seconds between expiry refreshes of a node's connected sessions


class TicketStore(Protocol):
    """The Store's resume-ticket methods (gateway.store.base.Store)."""

    def put_resume_ticket(self, ticket: ResumeTicket) -> None: ...
    def find_resume_ticket(self, digest: str, now: float) -> ResumeTicket | None: ...
    def take_resume_ticket(self, digest: str, now: float) -> ResumeTicket | None: ...
    def extend_resume_tickets(self, node: str, session_ids: Sequence[str],
                              now: float) -> None: ...
    def drop_resume_ticket(self, session_id: str, node: str | None = None) -> None: ...


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ResumeTickets:
    """This node's view of the Store's resume tickets. Store failures are logged, never raised:
    a session that cannot be made durable still runs (it only cannot outlive this process)."""

    def __init__(self, store: TicketStore, node: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.node = node
        self.clock = clock
        self._keeper: asyncio.Task[None] | None = None

    def issue(self, secret: str, *, session_id: str, user_id: str, cert_serial: str | None,
              fence: int, grace: float) -> None:
        ticket = ResumeTicket(session_id, digest(secret), user_id, cert_serial, self.node, fence,
                              grace, self.clock() + grace)
        try:
            self.store.put_resume_ticket(ticket)
        except StoreError as e:
            log.error("session %s: its resume right could not be stored (%s): it cannot "
                      "outlive this gateway process", session_id, e)

    def find(self, secret: str) -> ResumeTicket | None:
        try:
            return self.store.find_resume_ticket(digest(secret), self.clock())
        except StoreError as e:
            log.error("resume tickets cannot be read: %s", e)
            return None

    def take(self, secret: str) -> ResumeTicket | None:
        try:
            return self.store.take_resume_ticket(digest(secret), self.clock())
        except StoreError as e:
            log.error("resume tickets cannot be taken: %s", e)
            return None

    def drop(self, session_id: str) -> None:
        """The session ended here. A ticket another node issued for it since (it took the
        session over) is not this node's to remove."""
        try:
            self.store.drop_resume_ticket(session_id, self.node)
        except StoreError as e:
            log.error("session %s: its resume right could not be removed: %s", session_id, e)

    def keep_fresh(self, connected: Callable[[], list[str]]) -> None:
        """Start refreshing the expiry of the connected sessions' tickets (idempotent)."""
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._refresh(connected), name="resume-tickets")

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
            self._keeper = None

    async def _refresh(self, connected: Callable[[], list[str]]) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                self.store.extend_resume_tickets(self.node, connected(), self.clock())
            except StoreError as e:
                log.error("resume tickets could not be refreshed: %s", e)
