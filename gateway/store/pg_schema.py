"""Schema migrations of the PostgreSQL store: numbered SQL files applied in order.

`migrations/postgres/NNNN_name.sql` are applied once each, in one transaction that holds an
advisory lock, so two nodes starting at the same moment never race (the second waits, then finds
nothing left to do). Each applied file is recorded in `schema_migrations`. A database whose
schema is newer than this code knows is refused: an older node must not write into it.
Attacker-controlled: nothing (the SQL files ship with the code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

# pg_advisory_xact_lock key: "staffrm" as a number, the same on every node.
MIGRATION_LOCK = 0x73746166666D
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


class SchemaTooNew(Exception):
    """The database was migrated by a newer Staffroom; `args` = (found, known)."""


def migrations() -> list[Migration]:
    """The shipped migrations, in version order (numbers must run 1, 2, 3, … without gaps)."""
    folder = resources.files("gateway.store") / "migrations" / "postgres"
    found = []
    for entry in folder.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("the PostgreSQL migrations are not numbered 0001, 0002, … in order")
    return found


def applied_version(conn: psycopg.Connection) -> int:
    """The highest migration applied (0 for an empty database); reads only."""
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply what is missing, under the lock; the versions applied now. SchemaTooNew when the
    database is ahead of this code."""
    known = migrations()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                     "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        current = applied_version(conn)
        if current > len(known):
            raise SchemaTooNew(current, len(known))
        done = []
        for migration in known[current:]:
            conn.execute(migration.sql.encode())  # several statements, no parameters
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                         (migration.version, migration.name))
            done.append(migration.version)
    return done
