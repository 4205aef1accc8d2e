"""The PostgreSQL store's rows for running several nodes: desktops that outlive a gateway
process, single-use resume tickets and the live sessions every node sees (the same statements
as gateway.store.sqlite, in PostgreSQL's dialect; tables in migrations/postgres/0002_nodes.sql).

A mixin of `PostgresStore` (gateway.store.postgres), kept apart so each module stays one concern.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.store.base import LiveSessionRow
from gateway.store.desktops import DesktopRecord, ResumeTicket
from gateway.store.pg_rows import insert as _insert
from gateway.store.pg_rows import row_to as _row_to


class NodeRows:
    """Needs the host class's `_tx`, `_one` and `_all` (one transaction / statement each)."""

    _tx: Any
    _one: Any
    _all: Any

    # desktops
    def put_desktop(self, record: DesktopRecord) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM desktops WHERE user_id = %s", (record.user_id,))
            _insert(conn, "desktops", record)

    def list_desktops(self, host: str) -> list[DesktopRecord]:
        rows = self._all("SELECT * FROM desktops WHERE host = %s ORDER BY user_id", (host,))
        return [_row_to(DesktopRecord, r) for r in rows]

    def get_desktop(self, user_id: str) -> DesktopRecord | None:
        row = self._one("SELECT * FROM desktops WHERE user_id = %s", (user_id,))
        return _row_to(DesktopRecord, row) if row else None

    def claim_desktop(self, user_id: str, node: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE desktops SET node = %s WHERE user_id = %s", (node, user_id))

    def drop_desktop(self, user_id: str, runtime_dir: str | None = None) -> None:
        with self._tx() as conn:
            if runtime_dir is None:
                conn.execute("DELETE FROM desktops WHERE user_id = %s", (user_id,))
            else:
                conn.execute("DELETE FROM desktops WHERE user_id = %s AND runtime_dir = %s",
                             (user_id, runtime_dir))

    # resume tickets: taken with DELETE ... RETURNING, so exactly one node gets each
    def put_resume_ticket(self, ticket: ResumeTicket) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM resume_tickets WHERE session_id = %s OR digest = %s",
                         (ticket.session_id, ticket.digest))
            _insert(conn, "resume_tickets", ticket)

    def find_resume_ticket(self, digest: str, now: float) -> ResumeTicket | None:
        row = self._one("SELECT * FROM resume_tickets WHERE digest = %s AND valid_until >= %s",
                        (digest, now))
        return _row_to(ResumeTicket, row) if row else None

    def take_resume_ticket(self, digest: str, now: float) -> ResumeTicket | None:
        with self._tx() as conn:
            row = conn.execute("DELETE FROM resume_tickets WHERE digest = %s AND "
                               "valid_until >= %s RETURNING *", (digest, now)).fetchone()
            conn.execute("DELETE FROM resume_tickets WHERE session_id IN (SELECT session_id "
                         "FROM resume_tickets WHERE valid_until < %s FOR UPDATE SKIP LOCKED)",
                         (now,))
        return _row_to(ResumeTicket, row) if row else None

    def extend_resume_tickets(self, node: str, session_ids: Sequence[str], now: float) -> None:
        if not session_ids:
            return
        with self._tx() as conn:
            conn.execute("UPDATE resume_tickets SET valid_until = %s + grace WHERE node = %s "
                         "AND session_id = ANY(%s)", (now, node, list(session_ids)))

    def drop_resume_ticket(self, session_id: str, node: str | None = None) -> None:
        with self._tx() as conn:
            if node is None:
                conn.execute("DELETE FROM resume_tickets WHERE session_id = %s", (session_id,))
            else:
                conn.execute("DELETE FROM resume_tickets WHERE session_id = %s AND node = %s",
                             (session_id, node))

    # live sessions of every node
    def add_live_session(self, row: LiveSessionRow) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM live_sessions WHERE id = %s", (row.id,))
            _insert(conn, "live_sessions", row)

    def set_live_session_state(self, session_id: str, state: str,
                               node: str | None = None) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE live_sessions SET state = %s WHERE id = %s AND "
                         "(%s::text IS NULL OR node = %s)", (state, session_id, node, node))

    def remove_live_session(self, session_id: str, node: str | None = None) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM live_sessions WHERE id = %s AND "
                         "(%s::text IS NULL OR node = %s)", (session_id, node, node))

    def get_live_session(self, session_id: str) -> LiveSessionRow | None:
        row = self._one("SELECT * FROM live_sessions WHERE id = %s", (session_id,))
        return _row_to(LiveSessionRow, row) if row else None

    def list_live_sessions(self, school: str | None = None,
                           node: str | None = None) -> list[LiveSessionRow]:
        rows = self._all(
            "SELECT * FROM live_sessions WHERE (%s::text IS NULL OR school = %s) AND "
            "(%s::text IS NULL OR node = %s) ORDER BY started_at, id",
            (school, school, node, node))
        return [_row_to(LiveSessionRow, r) for r in rows]

    def request_live_session_end(self, session_id: str, reason: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute("UPDATE live_sessions SET end_reason = %s WHERE id = %s",
                               (reason, session_id))
            return cur.rowcount == 1

    def clear_node_live_sessions(self, node: str) -> int:
        with self._tx() as conn:
            return int(conn.execute("DELETE FROM live_sessions WHERE node = %s",
                                    (node,)).rowcount)
