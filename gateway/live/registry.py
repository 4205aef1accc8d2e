"""This node's rows in the registry of live sessions that every node reads (the Store's
`live_sessions`): added when a session starts, its tunnel state kept, removed when it ends.

Attacker-controlled here: nothing — the rows are written from sessions this node holds; a row
another node wrote is only read. A registry write that fails is logged and never ends or blocks
a session (the registry is a view; the session itself lives in this process).
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.store.base import LiveSessionRow, Store, StoreError

log = logging.getLogger(__name__)


class SessionRegistry:
    def __init__(self, store: Store, node: str) -> None:
        self.store = store
        self.node = node

    def add(self, session: Any) -> None:  # gateway.live.session.LiveSession
        self._write("add", self.store.add_live_session, LiveSessionRow(
            id=session.id, user_id=session.user_id, school=session.school, node=self.node,
            started_at=session.started_at, cert_serial=session.cert_serial,
            remote=session.remote, posture=session.posture[:300]))

    def state(self, session_id: str, state: str) -> None:
        self._write("update", self.store.set_live_session_state, session_id, state, self.node)

    def remove(self, session_id: str) -> None:
        """This node's row only: a node that took the session over has replaced it."""
        self._write("remove", self.store.remove_live_session, session_id, self.node)

    def holder(self, session_id: str) -> str | None:
        """The node the registry says holds the session (None: no row, or unreadable)."""
        try:
            row = self.store.get_live_session(session_id)
        except StoreError as e:
            log.error("live sessions registry unreadable: %s", e)
            return None
        return row.node if row is not None else None

    def clear_leftovers(self) -> int:
        """At start: the rows a previous run of this node left (it stopped without ending
        them, e.g. killed); its sessions are gone with it."""
        dropped = self.store.clear_node_live_sessions(self.node)
        if dropped:
            log.info("dropped %d live-session rows left by an earlier run of node %s",
                     dropped, self.node)
        return dropped

    def get(self, session_id: str) -> LiveSessionRow | None:
        return self.store.get_live_session(session_id)

    def rows(self, school: str | None = None) -> list[LiveSessionRow]:
        try:
            return self.store.list_live_sessions(school=school)
        except StoreError as e:
            log.error("live sessions registry unreadable, listing this node only: %s", e)
            return []

    def mine(self) -> list[LiveSessionRow]:
        return self.store.list_live_sessions(node=self.node)

    def request_end(self, session_id: str, reason: str) -> bool:
        return self.store.request_live_session_end(session_id, reason[:300])

    def _write(self, what: str, call: Any, *args: object) -> None:
        try:
            call(*args)
        except StoreError as e:
            log.error("live sessions registry: %s of a row failed: %s", what, e)
