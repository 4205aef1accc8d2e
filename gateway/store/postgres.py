"""PostgreSQL implementation of the Store: the state database every gateway node shares.

Each call is one transaction on a pooled connection (psycopg 3, sync), committed before it
returns. Nothing is cached in Python: what must hold across nodes is decided by the database
(`DELETE ... RETURNING` for nonces, conditional UPDATEs for TOTP steps and replay decisions,
`UPDATE ... RETURNING` for the CRL number, a table lock for desktop uids). Attacker-controlled
here: values (user ids, nonces, token hashes) — always bound as parameters, never SQL; column
and table names come from our dataclasses only. Limits: a small pool (4 connections), a bounded
wait for one (POOL_WAIT), a statement timeout, and TCP timeouts so a vanished server fails a
call within seconds instead of hanging it.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import errors, sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from gateway.store.base import (
    CertRecord,
    Conflict,
    Nonce,
    NotFound,
    OperatorSession,
    ReplayRequest,
    StoreError,
    StoreUnavailable,
    User,
    WorkspaceAssignment,
)
from gateway.store.dsn import scrub, where
from gateway.store.pg_rows import insert as _insert
from gateway.store.pg_rows import row_to as _row_to
from gateway.store.pg_schema import SchemaTooNew, migrate
from gateway.store.postgres_nodes import NodeRows

log = logging.getLogger(__name__)

T = TypeVar("T")
POOL_SIZE = 4  # per node: the store is called from the event loop and a few worker threads
POOL_WAIT = 2.0  # seconds a call waits for a free (or new) connection before it fails
CONNECT = {"connect_timeout": 5, "keepalives_idle": 10, "keepalives_interval": 5,
           "keepalives_count": 3, "tcp_user_timeout": 10_000}
SESSION = ("SET TIME ZONE 'UTC'", "SET statement_timeout = '15s'")
_USER_COLUMNS = {f.name for f in fields(User)} - {"id", "created_at"}
_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, errors.ReadOnlySqlTransaction,
                PoolTimeout, PoolClosed)


def connect_sentence(url: str, error: Exception) -> str:
    """Why a connection failed, in one sentence naming the server (never the password)."""
    text, at = str(error), where(url)
    if "authentication failed" in text or "no password supplied" in text:
        return (f"The state database at {at} refused the gateway's login: check the user and "
                "password of \"database\" in gateway.json (or the password file).")
    if "does not exist" in text and "database" in text:
        return (f"The state database at {at} does not exist: create it (createdb) or fix "
                "\"database\" in gateway.json.")
    return (f"The state database at {at} cannot be reached: check that PostgreSQL runs there "
            "and accepts connections from this node.")


def _check(conn: psycopg.Connection[Any]) -> None:
    """Before a pooled connection is handed out: an idle connection with bytes to read was
    most likely closed by the server (a restart, pg_terminate_backend); one empty query then
    raises, and the pool replaces it. Costs a poll, not a round trip, when all is well."""
    poller = select.poll()  # not select(): a busy gateway has descriptors past 1024
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        conn.execute("")


def _configure(conn: psycopg.Connection[Any]) -> None:
    for statement in SESSION:
        conn.execute(statement)  # type: ignore[arg-type]


class PostgresStore(NodeRows):
    """The Store Protocol over a PostgreSQL database shared by every gateway node. Opening it
    migrates the schema (under an advisory lock). Safe to share between threads."""

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.where = where(url)
        self.write_error: str | None = None  # the last write's failure, until one succeeds
        self.migrated = self._migrate()
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url, min_size=1, max_size=pool_size, timeout=POOL_WAIT, open=False,
            name=f"staffroom-state {self.where}", configure=_configure,
            check=_check,
            kwargs={**CONNECT, "row_factory": dict_row, "autocommit": True})
        try:
            self._pool.open(wait=True, timeout=POOL_WAIT + CONNECT["connect_timeout"])
        except PoolTimeout:
            self._pool.close()
            raise StoreUnavailable(f"The state database at {self.where} cannot be reached: "
                                   "check that PostgreSQL runs there.") from None

    def _migrate(self) -> list[int]:
        """Connect once (for a clear sentence when it fails) and bring the schema up to date."""
        try:
            with psycopg.connect(self.url, **CONNECT) as conn:  # type: ignore[arg-type]
                return migrate(conn)
        except SchemaTooNew as e:
            found, known = e.args
            raise StoreError(f"The state database at {self.where} has schema version {found}, "
                             f"newer than this gateway knows ({known}): upgrade Staffroom on "
                             "this node before starting it.") from None
        except psycopg.OperationalError as e:
            # The sentence says what to check; the driver's words go to the gateway's log
            # (info: a CLI without logging prints the sentence alone).
            log.info("state database %s: %s", self.where, scrub(str(e), self.url))
            raise StoreUnavailable(connect_sentence(self.url, e)) from None
        except psycopg.Error as e:
            log.error("state database %s: %s", self.where, scrub(str(e), self.url))
            raise StoreError(f"The database at {self.where} cannot hold Staffroom's tables "
                             f"({scrub(str(e).splitlines()[0], self.url)}): give the gateway "
                             "an empty database of its own.") from None

    def _unavailable(self, error: Exception) -> str:
        log.error("state database %s: %s", self.where, scrub(str(error), self.url))
        if isinstance(error, errors.DiskFull):
            return (f"The gateway's state database at {self.where} cannot be written because "
                    "its disk is full.")
        return (f"The gateway's state database at {self.where} cannot be reached or written "
                "(it is logged).")

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A write is one transaction, committed when the block ends and rolled back when it
        raises; a read is one autocommit statement. Server and pool failures become
        StoreUnavailable, a duplicate key Conflict."""
        try:
            with self._pool.connection() as conn:
                if write:
                    with conn.transaction():  # BEGIN … COMMIT (ROLLBACK when it raises)
                        yield conn
                else:
                    yield conn  # one statement (autocommit): one round trip
        except errors.UniqueViolation:
            raise Conflict("That already exists (another gateway node may have just added "
                           "it).") from None
        except _UNAVAILABLE as e:
            sentence = self._unavailable(e)
            # A server that cannot be read cannot be written either: health says degraded until
            # the watchdog's probe write succeeds (a read alone never clears it).
            self.write_error = sentence
            raise StoreUnavailable(sentence) from None
        if write:
            self.write_error = None

    def _one(self, query: str, args: Sequence[object] = ()) -> dict[str, Any] | None:
        with self._tx(write=False) as conn:
            return conn.execute(query, args).fetchone()  # type: ignore[arg-type]

    def _all(self, query: str | sql.Composed, args: Sequence[object] = ()
             ) -> list[dict[str, Any]]:
        with self._tx(write=False) as conn:
            return conn.execute(query, args).fetchall()  # type: ignore[arg-type]

    def probe_write(self) -> None:
        """A small real write (health's watchdog): raises StoreUnavailable while it fails."""
        with self._tx() as conn:
            conn.execute("INSERT INTO counters (name, value) VALUES ('probe', 1) ON CONFLICT "
                         "(name) DO UPDATE SET value = counters.value + 1")

    # accounts
    def add_user(self, user: User) -> None:
        self.add_users([user])

    def add_users(self, users: Sequence[User]) -> None:
        with self._tx() as conn:
            for user in users:
                if conn.execute("SELECT 1 FROM users WHERE id = %s", (user.id,)).fetchone():
                    raise Conflict(f"An account named {user.id!r} already exists.")
                _insert(conn, "users", user)

    def get_user(self, user_id: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE id = %s", (user_id,))
        return _row_to(User, row) if row else None

    def list_users(self, school: str | None = None) -> list[User]:
        if school is None:
            rows = self._all("SELECT * FROM users ORDER BY id")
        else:
            rows = self._all("SELECT * FROM users WHERE school = %s ORDER BY id", (school,))
        return [_row_to(User, r) for r in rows]

    def update_user_fields(self, user_id: str, changes: Mapping[str, object]) -> User:
        unknown = set(changes) - _USER_COLUMNS
        if unknown or not changes:
            raise ValueError(f"not user columns that can change: {sorted(unknown) or 'none'}")
        names = sorted(changes)  # checked against the dataclass above: never SQL from input
        query = sql.SQL("UPDATE users SET {} WHERE id = %s RETURNING *").format(
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names))
        with self._tx() as conn:
            row = conn.execute(query, (*(changes[n] for n in names), user_id)).fetchone()
            if row is None:
                raise NotFound(f"There is no account named {user_id!r}.")
        return _row_to(User, row)

    def record_login_success(self, user_id: str, totp_step: int | None) -> bool:
        # One conditional UPDATE: a concurrent login on another node that took the same step
        # (or a disable) commits first, and this row no longer matches when re-checked.
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL, "
                "totp_last_step = COALESCE(%(step)s::bigint, totp_last_step) "
                "WHERE id = %(id)s AND NOT disabled "
                "AND (%(step)s::bigint IS NULL OR totp_last_step < %(step)s::bigint)",
                {"step": totp_step, "id": user_id})
            return cur.rowcount == 1

    def record_login_failure(self, user_id: str, failed_logins: int,
                             locked_until: datetime | None) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE users SET failed_logins = %s, locked_until = %s WHERE id = %s",
                         (failed_logins, locked_until, user_id))

    def count_users(self) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0

    # operator sessions: read from the database on every request, so a revoke on one node is
    # refused by every node at once
    def add_operator_session(self, session: OperatorSession) -> None:
        with self._tx() as conn:
            _insert(conn, "operator_sessions", session)

    def get_operator_session(self, token_hash: str) -> OperatorSession | None:
        row = self._one("SELECT * FROM operator_sessions WHERE token_hash = %s", (token_hash,))
        return _row_to(OperatorSession, row) if row else None

    def revoke_operator_session(self, token_hash: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE operator_sessions SET revoked = TRUE WHERE token_hash = %s",
                         (token_hash,))

    def touch_operator_session(self, token_hash: str, expires_at: datetime) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE operator_sessions SET expires_at = %s "
                         "WHERE token_hash = %s AND NOT revoked", (expires_at, token_hash))

    def revoke_user_operator_sessions(self, user_id: str, keep: str | None = None) -> int:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE operator_sessions SET revoked = TRUE WHERE user_id = %s AND NOT revoked "
                "AND token_hash <> %s", (user_id, keep or ""))
            return int(cur.rowcount)

    # nonces
    def add_nonce(self, nonce: Nonce) -> None:
        with self._tx() as conn:
            _insert(conn, "nonces", nonce)

    def take_nonce(self, value: str, purpose: str, now: datetime) -> Nonce | None:
        with self._tx() as conn:
            # Two nodes deleting the same row: the second waits for the first, then finds it
            # gone, so a nonce is taken exactly once.
            row = conn.execute("DELETE FROM nonces WHERE value = %s AND purpose = %s AND "
                               "expires_at >= %s RETURNING *", (value, purpose, now)).fetchone()
            # Sweep expired ones, skipping rows another node is taking (no waits, no deadlock).
            conn.execute("DELETE FROM nonces WHERE value IN (SELECT value FROM nonces WHERE "
                         "expires_at < %s FOR UPDATE SKIP LOCKED)", (now,))
        return _row_to(Nonce, row) if row else None

    # certificates
    def add_cert(self, cert: CertRecord) -> None:
        with self._tx() as conn:
            _insert(conn, "certs", cert)

    def get_cert(self, serial: str) -> CertRecord | None:
        row = self._one("SELECT * FROM certs WHERE serial = %s", (serial.lower(),))
        return _row_to(CertRecord, row) if row else None

    def list_certs(self, user_id: str | None = None, school: str | None = None
                   ) -> list[CertRecord]:
        where_, args = [sql.SQL("TRUE")], []
        for column, value in (("user_id", user_id), ("school", school)):
            if value is not None:
                where_.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                args.append(value)
        query = sql.SQL("SELECT * FROM certs WHERE {} ORDER BY issued_at, serial").format(
            sql.SQL(" AND ").join(where_))
        return [_row_to(CertRecord, r) for r in self._all(query, args)]

    def revoke_cert(self, serial: str, reason: str, at: datetime) -> None:
        with self._tx() as conn:
            row = conn.execute("UPDATE certs SET revoked_at = %s, revoke_reason = %s "
                               "WHERE serial = %s AND revoked_at IS NULL RETURNING serial",
                               (at, reason, serial)).fetchone()
            if row is None:
                if conn.execute("SELECT 1 FROM certs WHERE serial = %s", (serial,)).fetchone():
                    raise Conflict(f"Certificate {serial} is already revoked.")
                raise NotFound(f"There is no certificate with serial {serial}.")

    def next_crl_number(self) -> int:
        with self._tx() as conn:
            row = conn.execute("INSERT INTO counters (name, value) VALUES ('crl', 1) "
                               "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 "
                               "RETURNING value").fetchone()
        assert row is not None
        return int(row["value"])

    # workspaces
    def set_assignment(self, assignment: WorkspaceAssignment) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM workspaces WHERE user_id = %s", (assignment.user_id,))
            _insert(conn, "workspaces", assignment)

    def get_assignment(self, user_id: str) -> WorkspaceAssignment | None:
        row = self._one("SELECT * FROM workspaces WHERE user_id = %s", (user_id,))
        return _row_to(WorkspaceAssignment, row) if row else None

    # two-person replay
    def add_replay_request(self, request: ReplayRequest) -> None:
        with self._tx() as conn:
            _insert(conn, "replay_requests", request)

    def get_replay_request(self, request_id: str) -> ReplayRequest | None:
        row = self._one("SELECT * FROM replay_requests WHERE id = %s", (request_id,))
        return _row_to(ReplayRequest, row) if row else None

    def list_replay_requests(self, school: str | None = None) -> list[ReplayRequest]:
        if school is None:
            rows = self._all("SELECT * FROM replay_requests ORDER BY created_at, id")
        else:
            rows = self._all("SELECT * FROM replay_requests WHERE school = %s "
                             "ORDER BY created_at, id", (school,))
        return [_row_to(ReplayRequest, r) for r in rows]

    def decide_replay_request(self, decided: ReplayRequest) -> None:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE replay_requests SET status = %s, decided_by = %s, decided_at = %s, "
                "decision_note = %s, expires_at = %s WHERE id = %s AND status = 'pending'",
                (decided.status, decided.decided_by, decided.decided_at, decided.decision_note,
                 decided.expires_at, decided.id))
            if cur.rowcount != 1:
                raise Conflict(f"Request {decided.id} has already been decided.")

    def find_approval(self, recording_id: str, requester: str, purposes: Sequence[str],
                      now: datetime) -> ReplayRequest | None:
        row = self._one(
            "SELECT * FROM replay_requests WHERE recording_id = %s AND requester = %s AND "
            "status = 'approved' AND purpose = ANY(%s) AND expires_at > %s "
            "ORDER BY decided_at DESC LIMIT 1", (recording_id, requester, list(purposes), now))
        return _row_to(ReplayRequest, row) if row else None

    # desktop accounts
    def desktop_uid(self, user_id: str) -> int | None:
        row = self._one("SELECT uid FROM desktop_uids WHERE user_id = %s", (user_id,))
        return int(row["uid"]) if row else None

    def allocate_desktop_uid(self, user_id: str, first: int, last: int,
                             unusable: Callable[[int], bool]) -> int:
        with self._tx() as conn:
            # One allocation at a time across all nodes (readers are not blocked); the UNIQUE
            # uid column would refuse a duplicate anyway.
            conn.execute("LOCK TABLE desktop_uids IN SHARE ROW EXCLUSIVE MODE")
            row = conn.execute("SELECT uid FROM desktop_uids WHERE user_id = %s",
                               (user_id,)).fetchone()
            if row is not None:
                return int(row["uid"])
            taken = {int(r["uid"]) for r in conn.execute(
                "SELECT uid FROM desktop_uids WHERE uid BETWEEN %s AND %s", (first, last))}
            for uid in range(first, last + 1):
                if uid not in taken and not unusable(uid):
                    conn.execute("INSERT INTO desktop_uids (user_id, uid) VALUES (%s, %s)",
                                 (user_id, uid))
                    return uid
        raise StoreError(f"The desktop uid range {first}-{last} is used up: "
                         "widen desktop_uids in the gateway's configuration.")

    def close(self) -> None:
        self._pool.close()
