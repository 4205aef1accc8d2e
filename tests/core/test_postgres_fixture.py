"""The test PostgreSQL server itself: a real server, separate databases per test."""

from __future__ import annotations

import psycopg

from tests.fixtures.postgres import PostgresServer


def test_each_test_gets_an_empty_database(postgres_server: PostgresServer, pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    other = postgres_server.create_database()
    with psycopg.connect(other) as conn:
        assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)


def test_wrong_password_is_refused(postgres_server: PostgresServer) -> None:
    import pytest

    bad = postgres_server.dsn().replace(postgres_server.password, "wrong")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(bad, connect_timeout=5)
