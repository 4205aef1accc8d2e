"""The audit trail's tables in PostgreSQL, their migrations, and the trail's creation record.

Attacker-controlled here: nothing but the DSN from gateway.json (an operator's file) and what the
database answers. Limits: a connection is waited for CONNECT_TIMEOUT seconds and a statement
STATEMENT_TIMEOUT; migrations run under a transaction-scoped advisory lock, so nodes starting
together migrate once.

Tables (prefixed `audit_`, apart from the state database's own):
  audit_records  one row per record: `line` is the canonical JSON line (what the chain hashes);
                 seq/node/time/kind/actor/subject/school repeat it for indexed search, and
                 verify checks that they agree with the line.
  audit_head     exactly one row (id = 1): the signed (log id, seq, hash) of the last record.
                 Every append locks it (`SELECT ... FOR UPDATE`), which serialises all nodes.
  audit_schema   the migration version.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit import chain
from gateway.audit.events import (
    KIND_CREATED,
    AuditEvent,
    AuditRecord,
    check_event,
    format_time,
    record_line,
)

CONNECT_TIMEOUT = 5  # seconds to reach the server before an append fails
STATEMENT_TIMEOUT_MS = 10_000  # a stuck statement (or a lock held by a hung node) fails the append
IDLE_IN_TRANSACTION_MS = 30_000  # a node that dies holding the head lock frees it after this
MIGRATION_LOCK = 0x5354_4146_4155_4454  # "STAFAUDT": pg_advisory_xact_lock key for migrations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE audit_records (
        seq bigint PRIMARY KEY CHECK (seq >= 0),
        node text NOT NULL,
        time text COLLATE "C" NOT NULL,  -- fixed-width UTC: byte order is time order
        kind text NOT NULL,
        actor text,
        subject text,
        school text,
        line text NOT NULL
    );
    CREATE INDEX audit_records_time ON audit_records (time);
    CREATE INDEX audit_records_school_time ON audit_records (school, time);
    CREATE TABLE audit_head (
        id smallint PRIMARY KEY CHECK (id = 1),
        log_id text NOT NULL,
        seq bigint NOT NULL,
        hash text NOT NULL,
        checkpoint_seq bigint NOT NULL,
        signature text NOT NULL
    );
    """,
)


class TrailExists(Exception):
    """There is already an audit trail in this database."""


def connect(dsn: str, *, autocommit: bool = False) -> Any:
    """A connection with the trail's timeouts (psycopg.OperationalError when unreachable)."""
    options = (f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
               f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}")
    return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, options=options,
                           autocommit=autocommit, application_name="staffroom-audit")


def migrate(conn: Any) -> None:
    """Bring the tables up to date; safe to run from every node at once."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS audit_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM audit_schema").fetchone()
        version = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO audit_schema (version) VALUES (0)")
        for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.execute(sql)
            conn.execute("UPDATE audit_schema SET version = %s", (number,))


def insert_record(conn: Any, record: AuditRecord, node: str) -> None:
    e = record.event
    conn.execute(
        "INSERT INTO audit_records (seq, node, time, kind, actor, subject, school, line) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (record.seq, node, record.time, e.kind, e.actor, e.subject, e.school,
         record_line(record)[:-1].decode("utf-8")))


def create_trail(dsn: str, signing_key: ec.EllipticCurvePrivateKey, node: str = "init",
                 *, now: datetime | None = None) -> str:
    """Make the tables and record 0 with a new random log id and its signed head (what
    `staffroom init --db` calls once for the whole board); returns the log id. TrailExists
    when the database already holds a trail: deleting it must not pass for a fresh start."""
    chain.require_p256(signing_key)
    log_id = secrets.token_hex(16)
    event = check_event(AuditEvent(KIND_CREATED, "ok", details={
        "log_id": log_id, "format": chain.FORMAT,
        "key_id": chain.key_id(signing_key.public_key()), "node": node}), internal=True)
    time = format_time(now or datetime.now(UTC))
    prev = chain.genesis_hash(log_id)
    record = AuditRecord(0, time, event, prev, chain.record_hash(0, time, event, prev))
    head = chain.make_head(signing_key, log_id, 0, record.hash, 0)
    with connect(dsn) as conn:
        migrate(conn)
        with conn.transaction():
            conn.execute("LOCK TABLE audit_head IN EXCLUSIVE MODE")
            if conn.execute("SELECT 1 FROM audit_head UNION ALL "
                            "SELECT 1 FROM audit_records LIMIT 1").fetchone():
                raise TrailExists("There is already an audit trail in this database; "
                                  "every gateway node appends to that one.")
            insert_record(conn, record, node)
            write_head(conn, head, insert=True)
    return log_id


def write_head(conn: Any, head: chain.Head, *, insert: bool = False) -> None:
    values = (head.log_id, head.seq, head.hash, head.checkpoint_seq, head.signature)
    if insert:
        conn.execute("INSERT INTO audit_head (id, log_id, seq, hash, checkpoint_seq, signature) "
                     "VALUES (1, %s, %s, %s, %s, %s)", values)
    else:
        conn.execute("UPDATE audit_head SET log_id = %s, seq = %s, hash = %s, "
                     "checkpoint_seq = %s, signature = %s WHERE id = 1", values)


def read_head(conn: Any, *, lock: bool = False) -> chain.Head | None:
    row = conn.execute("SELECT log_id, seq, hash, checkpoint_seq, signature FROM audit_head "
                       "WHERE id = 1" + (" FOR UPDATE" if lock else "")).fetchone()
    return None if row is None else chain.Head(*row)
