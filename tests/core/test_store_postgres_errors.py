"""The PostgreSQL store's failures: one sentence naming host:port, never the password, in the
exception and in the logs; a database that goes away and comes back."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest

from gateway.store.base import StoreError, StoreUnavailable, User
from gateway.store.dsn import redact, scrub, where
from gateway.store.postgres import PostgresStore
from tests.fixtures.gateway import free_port
from tests.fixtures.postgres import PostgresServer


@pytest.mark.parametrize(("url", "redacted", "at"), [
    ("postgresql://staff:s3cr%40t@db.example:6432/state",
     "postgresql://staff:***@db.example:6432/state", "db.example:6432/state"),
    ("postgres://staff@10.0.0.5/state", "postgres://staff@10.0.0.5/state", "10.0.0.5:5432/state"),
    ("postgresql://u:pw@[::1]:5433/db", "postgresql://u:***@[::1]:5433/db", "::1:5433/db"),
    ("postgresql://u:pw@host:notaport/db", "(an unreadable database URL)",
     "(an unreadable database URL)"),
    ("postgresql://u@db/state?password=Zz9-secret&sslmode=verify-full",
     "postgresql://u@db/state?password=***&sslmode=verify-full", "db:5432/state"),
])
def test_urls_are_shown_without_their_password(url: str, redacted: str, at: str) -> None:
    assert redact(url) == redacted
    assert where(url) == at


def test_scrub_masks_the_password_as_given_and_as_encoded() -> None:
    url = "postgresql://staff:s3cr%40t@db/state"
    assert scrub("failed for s3cr@t and s3cr%40t", url) == "failed for *** and ***"
    assert scrub("nothing to hide", "postgresql://staff@db/state") == "nothing to hide"


def test_an_unreachable_server_is_one_sentence_without_the_password(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql://staff:Very-Secret-9@127.0.0.1:{free_port()}/state"
    with pytest.raises(StoreUnavailable) as refused:
        PostgresStore(url)
    message = str(refused.value)
    assert message.startswith("The state database at 127.0.0.1:")
    assert "cannot be reached" in message and message.endswith(".") and "\n" not in message
    assert "Very-Secret-9" not in message and "Very-Secret-9" not in caplog.text


def test_a_wrong_password_and_a_missing_database_say_so(postgres_server: PostgresServer,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = postgres_server.dsn("postgres").replace(postgres_server.password, "Wrong-Pass-7")
    with pytest.raises(StoreUnavailable, match="refused the gateway's login: check the user "
                                               "and password"):
        PostgresStore(wrong)
    missing = postgres_server.dsn("no_such_db")
    with pytest.raises(StoreUnavailable, match=r"/no_such_db does not exist: create it"):
        PostgresStore(missing)
    assert "Wrong-Pass-7" not in caplog.text and postgres_server.password not in caplog.text


def test_a_database_holding_other_tables_is_refused_with_a_sentence(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE users (something INT)")
    with pytest.raises(StoreError, match=r"cannot hold Staffroom's tables .*give the gateway "
                                         "an empty database of its own"):
        PostgresStore(pg_dsn)


def test_a_database_that_goes_away_fails_writes_and_recovers(
        postgres_server: PostgresServer, pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn)
    name = pg_dsn.rsplit("/", 1)[1]
    try:
        store.add_user(User("a", "A", "teacher", "s1"))
        with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s", (name,))
            with pytest.raises(StoreUnavailable, match="cannot be reached or written") as down:
                store.add_user(User("b", "B", "teacher", "s1"))
            assert store.write_error == str(down.value)
            assert postgres_server.password not in str(down.value)
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        store.probe_write()  # what health's watchdog does
        assert store.write_error is None
        store.add_user(User("b", "B", "teacher", "s1"))
        assert [u.id for u in store.list_users()] == ["a", "b"]
    finally:
        store.close()


def test_the_password_can_stay_out_of_the_url_in_a_passfile(
        postgres_server: PostgresServer, pg_dsn: str, tmp_path: Path) -> None:
    """libpq's password file (`?passfile=` or $PGPASSFILE): gateway.json then holds no secret."""
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{postgres_server.port}:*:{postgres_server.user}:"
                        f"{postgres_server.password}\n")
    passfile.chmod(0o600)
    bare = pg_dsn.replace(f":{postgres_server.password}@", "@")
    assert postgres_server.password not in bare
    with pytest.raises(StoreUnavailable, match="refused the gateway's login"):
        PostgresStore(bare + f"?passfile={tmp_path / 'missing'}")
    store = PostgresStore(f"{bare}?passfile={passfile}")
    try:
        store.add_user(User("a", "A", "teacher", "s1"))
        assert store.count_users() == 1
    finally:
        store.close()


def test_connections_the_server_closed_are_replaced_before_use(
        postgres_server: PostgresServer, pg_dsn: str) -> None:
    """A PostgreSQL restart (here: every backend of the database terminated) must not fail the
    next calls: the pool notices the closed connections and opens new ones."""
    store = PostgresStore(pg_dsn)
    name = pg_dsn.rsplit("/", 1)[1]
    try:
        store.add_user(User("a", "A", "teacher", "s1"))
        with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM "
                                   "pg_stat_activity WHERE datname = %s", (name,)).fetchone()
        assert killed is not None and killed[0] >= 1
        import time

        time.sleep(0.2)  # the server's goodbye reaches the pooled sockets
        assert store.get_user("a") is not None
        store.add_user(User("b", "B", "teacher", "s1"))
        assert store.write_error is None and store.count_users() == 2
    finally:
        store.close()
