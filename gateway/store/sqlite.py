"""SQLite implementation of the Store: one file, WAL, synchronous=FULL so commits are durable."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import astuple, fields
from datetime import datetime
from pathlib import Path

from gateway.store.base import (
    CertRecord,
    Conflict,
    LiveSessionRow,
    Nonce,
    NotFound,
    OperatorSession,
    ReplayRequest,
    StoreError,
    StoreUnavailable,
    User,
    WorkspaceAssignment,
)
from gateway.store.desktops import DesktopRecord, ResumeTicket

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, school TEXT,
  password_hash TEXT, disabled INTEGER NOT NULL, must_change_password INTEGER NOT NULL,
  totp_secret TEXT, totp_last_step INTEGER NOT NULL, failed_logins INTEGER NOT NULL,
  locked_until TEXT, created_at TEXT);
CREATE TABLE IF NOT EXISTS operator_sessions (
  token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL, revoked INTEGER NOT NULL, kind TEXT NOT NULL DEFAULT 'bearer',
  csrf TEXT);
CREATE TABLE IF NOT EXISTS nonces (
  value TEXT PRIMARY KEY, purpose TEXT NOT NULL, user_id TEXT, expires_at TEXT NOT NULL,
  bound_to TEXT);
CREATE TABLE IF NOT EXISTS certs (
  serial TEXT PRIMARY KEY, user_id TEXT NOT NULL, school TEXT, not_before TEXT NOT NULL,
  not_after TEXT NOT NULL, pem TEXT NOT NULL, issued_by TEXT NOT NULL, issued_at TEXT NOT NULL,
  revoked_at TEXT, revoke_reason TEXT);
CREATE INDEX IF NOT EXISTS certs_user ON certs(user_id);
CREATE TABLE IF NOT EXISTS workspaces (
  user_id TEXT PRIMARY KEY, provider TEXT NOT NULL, host TEXT, port INTEGER, password TEXT);
CREATE TABLE IF NOT EXISTS replay_requests (
  id TEXT PRIMARY KEY, recording_id TEXT NOT NULL, purpose TEXT NOT NULL, requester TEXT NOT NULL,
  reason TEXT NOT NULL, subject TEXT NOT NULL, school TEXT, created_at TEXT NOT NULL,
  status TEXT NOT NULL, decided_by TEXT, decided_at TEXT, decision_note TEXT, expires_at TEXT);
CREATE INDEX IF NOT EXISTS replay_requests_recording ON replay_requests(recording_id);
CREATE TABLE IF NOT EXISTS desktop_uids (user_id TEXT PRIMARY KEY, uid INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS desktops (
  user_id TEXT PRIMARY KEY, node TEXT NOT NULL, host TEXT NOT NULL, display INTEGER NOT NULL,
  server_pid INTEGER NOT NULL, server_start INTEGER NOT NULL, session_pid INTEGER NOT NULL,
  session_start INTEGER NOT NULL, runtime_dir TEXT NOT NULL, rfb_socket TEXT NOT NULL,
  rfbauth TEXT NOT NULL, home TEXT NOT NULL, home_mode TEXT NOT NULL, uid INTEGER NOT NULL,
  gid INTEGER NOT NULL, switch INTEGER NOT NULL, sandbox_mode TEXT NOT NULL, marker TEXT NOT NULL,
  started_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS resume_tickets (
  session_id TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL,
  cert_serial TEXT, node TEXT NOT NULL, fence INTEGER NOT NULL, grace REAL NOT NULL,
  valid_until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS live_sessions (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL, school TEXT, node TEXT NOT NULL,
  started_at TEXT NOT NULL, cert_serial TEXT, remote TEXT, posture TEXT NOT NULL,
  state TEXT NOT NULL, end_reason TEXT);
CREATE INDEX IF NOT EXISTS live_sessions_node ON live_sessions(node);
"""

# Columns added after a table first shipped: (name, declaration), applied by _migrate.
_ADDED_COLUMNS = {
    "operator_sessions": (("kind", "TEXT NOT NULL DEFAULT 'bearer'"), ("csrf", "TEXT")),
}

_BOOL_FIELDS = {"disabled", "must_change_password", "revoked", "switch"}
_USER_COLUMNS = {f.name for f in fields(User)} - {"id", "created_at"}


def _to_sql(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _row_to(cls: type, row: sqlite3.Row) -> object:
    kwargs: dict[str, object] = {}
    for f in fields(cls):
        value = row[f.name]
        # By the field's type, not its name: DesktopRecord.started_at is epoch seconds.
        if value is not None and "datetime" in str(f.type):
            value = datetime.fromisoformat(value)
        elif f.name in _BOOL_FIELDS:
            value = bool(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _unavailable(error: sqlite3.OperationalError) -> StoreUnavailable:
    log.error("state database: %s", error)
    if "full" in str(error):
        return StoreUnavailable("The gateway's state database cannot be written because the "
                                "disk is full.")
    return StoreUnavailable("The gateway's state database cannot be written (it is logged).")


def _insert_sql(table: str, cls: type) -> str:
    names = [f.name for f in fields(cls)]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


class SqliteStore:
    """The Store Protocol over one SQLite file. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self.write_error: str | None = None  # the last write's failure, until one succeeds
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a state file made by an older gateway up to this schema (columns only added)."""
        have = {r["name"] for r in self._db.execute("PRAGMA table_info(operator_sessions)")}
        for column, decl in _ADDED_COLUMNS["operator_sessions"]:
            if column not in have:
                self._db.execute(f"ALTER TABLE operator_sessions ADD COLUMN {column} {decl}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a full disk or I/O error becomes StoreUnavailable (and the
        transaction is rolled back, so the next write starts clean once space returns)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as e:
                self.write_error = str(_unavailable(e))
                raise StoreUnavailable(self.write_error) from None
            self.write_error = None

    def probe_write(self) -> None:
        """A small real write (health's watchdog): raises StoreUnavailable while it fails."""
        with self._tx() as db:
            db.execute("INSERT INTO counters(name, value) VALUES ('probe', 1) "
                       "ON CONFLICT(name) DO UPDATE SET value = value + 1")

    def _one(self, sql: str, args: tuple[object, ...]) -> sqlite3.Row | None:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchone()
            except sqlite3.OperationalError as e:
                raise _unavailable(e) from None

    def _all(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.OperationalError as e:
                raise _unavailable(e) from None

    # accounts
    def add_user(self, user: User) -> None:
        self.add_users([user])

    def add_users(self, users: Sequence[User]) -> None:
        with self._tx() as db:
            for user in users:
                if db.execute("SELECT 1 FROM users WHERE id = ?", (user.id,)).fetchone():
                    raise Conflict(f"An account named {user.id!r} already exists.")
                db.execute(_insert_sql("users", User), tuple(map(_to_sql, astuple(user))))

    def get_user(self, user_id: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE id = ?", (user_id,))
        return _row_to(User, row) if row else None  # type: ignore[return-value]

    def list_users(self, school: str | None = None) -> list[User]:
        if school is None:
            rows = self._all("SELECT * FROM users ORDER BY id")
        else:
            rows = self._all("SELECT * FROM users WHERE school = ? ORDER BY id", (school,))
        return [_row_to(User, r) for r in rows]  # type: ignore[misc]

    def update_user_fields(self, user_id: str, changes: Mapping[str, object]) -> User:
        unknown = set(changes) - _USER_COLUMNS
        if unknown or not changes:
            raise ValueError(f"not user columns that can change: {sorted(unknown) or 'none'}")
        names = sorted(changes)  # checked against the dataclass above: never SQL from input
        sets = ", ".join(f"{n} = ?" for n in names)
        with self._tx() as db:
            row = db.execute(f"UPDATE users SET {sets} WHERE id = ? RETURNING *",
                             (*(_to_sql(changes[n]) for n in names), user_id)).fetchone()
            if row is None:
                raise NotFound(f"There is no account named {user_id!r}.")
        return _row_to(User, row)  # type: ignore[return-value]

    def record_login_success(self, user_id: str, totp_step: int | None) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL, "
                "totp_last_step = COALESCE(?, totp_last_step) "
                "WHERE id = ? AND disabled = 0 AND (? IS NULL OR totp_last_step < ?)",
                (totp_step, user_id, totp_step, totp_step))
            return cur.rowcount == 1

    def record_login_failure(self, user_id: str, failed_logins: int,
                             locked_until: datetime | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?",
                       (failed_logins, _to_sql(locked_until), user_id))

    def count_users(self) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM users", ())
        return int(row["n"]) if row else 0

    # operator sessions
    def add_operator_session(self, session: OperatorSession) -> None:
        with self._tx() as db:
            db.execute(
                _insert_sql("operator_sessions", OperatorSession),
                tuple(map(_to_sql, astuple(session))),
            )

    def get_operator_session(self, token_hash: str) -> OperatorSession | None:
        row = self._one("SELECT * FROM operator_sessions WHERE token_hash = ?", (token_hash,))
        return _row_to(OperatorSession, row) if row else None  # type: ignore[return-value]

    def revoke_operator_session(self, token_hash: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE operator_sessions SET revoked = 1 WHERE token_hash = ?", (token_hash,)
            )

    def touch_operator_session(self, token_hash: str, expires_at: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE operator_sessions SET expires_at = ? WHERE token_hash = ? AND revoked = 0",
                (expires_at.isoformat(), token_hash),
            )

    def revoke_user_operator_sessions(self, user_id: str, keep: str | None = None) -> int:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE operator_sessions SET revoked = 1 WHERE user_id = ? AND revoked = 0 "
                "AND token_hash != ?", (user_id, keep or ""))
            return int(cur.rowcount)

    # nonces
    def add_nonce(self, nonce: Nonce) -> None:
        with self._tx() as db:
            db.execute(_insert_sql("nonces", Nonce), tuple(map(_to_sql, astuple(nonce))))

    def take_nonce(self, value: str, purpose: str, now: datetime) -> Nonce | None:
        with self._tx() as db:
            db.execute("DELETE FROM nonces WHERE expires_at < ?", (now.isoformat(),))
            row = db.execute(
                "DELETE FROM nonces WHERE value = ? AND purpose = ? RETURNING *", (value, purpose)
            ).fetchone()
        return _row_to(Nonce, row) if row else None  # type: ignore[return-value]

    # certificates
    def add_cert(self, cert: CertRecord) -> None:
        with self._tx() as db:
            db.execute(_insert_sql("certs", CertRecord), tuple(map(_to_sql, astuple(cert))))

    def get_cert(self, serial: str) -> CertRecord | None:
        row = self._one("SELECT * FROM certs WHERE serial = ?", (serial.lower(),))
        return _row_to(CertRecord, row) if row else None  # type: ignore[return-value]

    def list_certs(
        self, user_id: str | None = None, school: str | None = None
    ) -> list[CertRecord]:
        sql, args = "SELECT * FROM certs WHERE 1=1", []
        if user_id is not None:
            sql, args = sql + " AND user_id = ?", [*args, user_id]
        if school is not None:
            sql, args = sql + " AND school = ?", [*args, school]
        rows = self._all(sql + " ORDER BY issued_at, serial", tuple(args))
        return [_row_to(CertRecord, r) for r in rows]  # type: ignore[misc]

    def revoke_cert(self, serial: str, reason: str, at: datetime) -> None:
        with self._tx() as db:
            row = db.execute("SELECT revoked_at FROM certs WHERE serial = ?", (serial,)).fetchone()
            if row is None:
                raise NotFound(f"There is no certificate with serial {serial}.")
            if row["revoked_at"] is not None:
                raise Conflict(f"Certificate {serial} is already revoked.")
            db.execute(
                "UPDATE certs SET revoked_at = ?, revoke_reason = ? WHERE serial = ?",
                (at.isoformat(), reason, serial),
            )

    def next_crl_number(self) -> int:
        with self._tx() as db:
            db.execute(
                "INSERT INTO counters(name, value) VALUES ('crl', 1) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1"
            )
            row = db.execute("SELECT value FROM counters WHERE name = 'crl'").fetchone()
        return int(row["value"])

    # workspaces
    def set_assignment(self, assignment: WorkspaceAssignment) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM workspaces WHERE user_id = ?", (assignment.user_id,))
            db.execute(
                _insert_sql("workspaces", WorkspaceAssignment),
                tuple(map(_to_sql, astuple(assignment))),
            )

    def get_assignment(self, user_id: str) -> WorkspaceAssignment | None:
        row = self._one("SELECT * FROM workspaces WHERE user_id = ?", (user_id,))
        return _row_to(WorkspaceAssignment, row) if row else None  # type: ignore[return-value]

    # two-person replay
    def add_replay_request(self, request: ReplayRequest) -> None:
        with self._tx() as db:
            db.execute(_insert_sql("replay_requests", ReplayRequest),
                       tuple(map(_to_sql, astuple(request))))

    def get_replay_request(self, request_id: str) -> ReplayRequest | None:
        row = self._one("SELECT * FROM replay_requests WHERE id = ?", (request_id,))
        return _row_to(ReplayRequest, row) if row else None  # type: ignore[return-value]

    def list_replay_requests(self, school: str | None = None) -> list[ReplayRequest]:
        if school is None:
            rows = self._all("SELECT * FROM replay_requests ORDER BY created_at, id")
        else:
            rows = self._all("SELECT * FROM replay_requests WHERE school = ? "
                             "ORDER BY created_at, id", (school,))
        return [_row_to(ReplayRequest, r) for r in rows]  # type: ignore[misc]

    def decide_replay_request(self, decided: ReplayRequest) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE replay_requests SET status = ?, decided_by = ?, decided_at = ?, "
                "decision_note = ?, expires_at = ? WHERE id = ? AND status = 'pending'",
                (decided.status, decided.decided_by, _to_sql(decided.decided_at),
                 decided.decision_note, _to_sql(decided.expires_at), decided.id))
            if cur.rowcount != 1:
                raise Conflict(f"Request {decided.id} has already been decided.")

    def find_approval(self, recording_id: str, requester: str, purposes: Sequence[str],
                      now: datetime) -> ReplayRequest | None:
        marks = ", ".join("?" * len(purposes))
        rows = self._all(
            "SELECT * FROM replay_requests WHERE recording_id = ? AND requester = ? AND "
            f"status = 'approved' AND purpose IN ({marks}) ORDER BY decided_at DESC",
            (recording_id, requester, *purposes))
        for row in rows:
            request: ReplayRequest = _row_to(ReplayRequest, row)  # type: ignore[assignment]
            if request.expires_at is not None and request.expires_at > now:
                return request
        return None

    # desktop accounts
    def desktop_uid(self, user_id: str) -> int | None:
        row = self._one("SELECT uid FROM desktop_uids WHERE user_id = ?", (user_id,))
        return int(row["uid"]) if row else None

    def allocate_desktop_uid(self, user_id: str, first: int, last: int,
                             unusable: Callable[[int], bool]) -> int:
        with self._tx() as db:
            row = db.execute("SELECT uid FROM desktop_uids WHERE user_id = ?",
                             (user_id,)).fetchone()
            if row is not None:
                return int(row["uid"])
            taken = {int(r["uid"]) for r in db.execute(
                "SELECT uid FROM desktop_uids WHERE uid BETWEEN ? AND ?", (first, last))}
            for uid in range(first, last + 1):
                if uid not in taken and not unusable(uid):
                    db.execute("INSERT INTO desktop_uids (user_id, uid) VALUES (?, ?)",
                               (user_id, uid))
                    return uid
        raise StoreError(f"The desktop uid range {first}-{last} is used up: "
                         "widen desktop_uids in the gateway's configuration.")

    # desktops that outlive a gateway process (gateway.store.desktops)
    def put_desktop(self, record: DesktopRecord) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM desktops WHERE user_id = ?", (record.user_id,))
            db.execute(_insert_sql("desktops", DesktopRecord),
                       tuple(map(_to_sql, astuple(record))))

    def list_desktops(self, host: str) -> list[DesktopRecord]:
        rows = self._all("SELECT * FROM desktops WHERE host = ? ORDER BY user_id", (host,))
        return [_row_to(DesktopRecord, r) for r in rows]  # type: ignore[misc]

    def get_desktop(self, user_id: str) -> DesktopRecord | None:
        row = self._one("SELECT * FROM desktops WHERE user_id = ?", (user_id,))
        return _row_to(DesktopRecord, row) if row else None  # type: ignore[return-value]

    def claim_desktop(self, user_id: str, node: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE desktops SET node = ? WHERE user_id = ?", (node, user_id))

    def drop_desktop(self, user_id: str, runtime_dir: str | None = None) -> None:
        with self._tx() as db:
            if runtime_dir is None:
                db.execute("DELETE FROM desktops WHERE user_id = ?", (user_id,))
            else:
                db.execute("DELETE FROM desktops WHERE user_id = ? AND runtime_dir = ?",
                           (user_id, runtime_dir))

    # resume tickets (gateway.store.desktops.ResumeTicket)
    def put_resume_ticket(self, ticket: ResumeTicket) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM resume_tickets WHERE session_id = ?", (ticket.session_id,))
            db.execute(_insert_sql("resume_tickets", ResumeTicket),
                       tuple(map(_to_sql, astuple(ticket))))

    def find_resume_ticket(self, digest: str, now: float) -> ResumeTicket | None:
        row = self._one("SELECT * FROM resume_tickets WHERE digest = ? AND valid_until >= ?",
                        (digest, now))
        return _row_to(ResumeTicket, row) if row else None  # type: ignore[return-value]

    def take_resume_ticket(self, digest: str, now: float) -> ResumeTicket | None:
        with self._tx() as db:
            db.execute("DELETE FROM resume_tickets WHERE valid_until < ?", (now,))
            row = db.execute("DELETE FROM resume_tickets WHERE digest = ? RETURNING *",
                             (digest,)).fetchone()
        return _row_to(ResumeTicket, row) if row else None  # type: ignore[return-value]

    def extend_resume_tickets(self, node: str, session_ids: Sequence[str], now: float) -> None:
        if not session_ids:
            return
        marks = ", ".join("?" * len(session_ids))
        with self._tx() as db:
            db.execute(f"UPDATE resume_tickets SET valid_until = ? + grace WHERE node = ? "
                       f"AND session_id IN ({marks})", (now, node, *session_ids))

    def drop_resume_ticket(self, session_id: str, node: str | None = None) -> None:
        with self._tx() as db:
            if node is None:
                db.execute("DELETE FROM resume_tickets WHERE session_id = ?", (session_id,))
            else:
                db.execute("DELETE FROM resume_tickets WHERE session_id = ? AND node = ?",
                           (session_id, node))
    # live sessions of every node
    def add_live_session(self, row: LiveSessionRow) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM live_sessions WHERE id = ?", (row.id,))
            db.execute(_insert_sql("live_sessions", LiveSessionRow),
                       tuple(map(_to_sql, astuple(row))))

    def set_live_session_state(self, session_id: str, state: str,
                               node: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE live_sessions SET state = ? WHERE id = ? AND "
                       "(? IS NULL OR node = ?)", (state, session_id, node, node))

    def remove_live_session(self, session_id: str, node: str | None = None) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM live_sessions WHERE id = ? AND (? IS NULL OR node = ?)",
                       (session_id, node, node))

    def get_live_session(self, session_id: str) -> LiveSessionRow | None:
        row = self._one("SELECT * FROM live_sessions WHERE id = ?", (session_id,))
        return _row_to(LiveSessionRow, row) if row else None  # type: ignore[return-value]

    def list_live_sessions(self, school: str | None = None,
                           node: str | None = None) -> list[LiveSessionRow]:
        sql, args = "SELECT * FROM live_sessions WHERE 1=1", []
        if school is not None:
            sql, args = sql + " AND school = ?", [*args, school]
        if node is not None:
            sql, args = sql + " AND node = ?", [*args, node]
        rows = self._all(sql + " ORDER BY started_at, id", tuple(args))
        return [_row_to(LiveSessionRow, r) for r in rows]  # type: ignore[misc]

    def request_live_session_end(self, session_id: str, reason: str) -> bool:
        with self._tx() as db:
            cur = db.execute("UPDATE live_sessions SET end_reason = ? WHERE id = ?",
                             (reason, session_id))
            return cur.rowcount == 1

    def clear_node_live_sessions(self, node: str) -> int:
        with self._tx() as db:
            return int(db.execute("DELETE FROM live_sessions WHERE node = ?", (node,)).rowcount)

    def close(self) -> None:
        with self._lock:
            self._db.close()
