"""Two gateway nodes on one PostgreSQL database: what must hold across nodes is decided by the
database, not by either process's memory. Each "node" is its own PostgresStore (own pool)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from gateway.store.base import Nonce, OperatorSession, ReplayRequest, StoreError, User
from gateway.store.pg_schema import migrations
from gateway.store.postgres import PostgresStore

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def nodes(pg_dsn: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    a, b = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def race(n: int, work: Callable[[int], object]) -> list[object]:
    """Run work(0..n-1) in n threads released at the same moment; their results."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_a_nonce_is_taken_exactly_once_across_nodes(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = nodes
    for round_ in range(20):
        a.add_nonce(Nonce(f"n{round_}", "login", "t1", NOW + timedelta(seconds=60)))
        taken = race(8, lambda i, r=round_: (a, b)[i % 2].take_nonce(f"n{r}", "login", NOW))
        winners = [t for t in taken if isinstance(t, Nonce)]
        assert len(winners) == 1, taken
        assert all(t is None for t in taken if t is not winners[0])


def test_a_totp_step_used_on_one_node_is_refused_on_the_other(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = nodes
    a.add_user(User("t1", "Tanaka", "teacher", "s1", totp_last_step=100, failed_logins=2))
    assert a.record_login_success("t1", 101)
    assert not b.record_login_success("t1", 101)
    assert not b.record_login_success("t1", 100)
    # Both nodes at the same moment with a fresh code: exactly one login stands.
    results = race(6, lambda i: (a, b)[i % 2].record_login_success("t1", 102))
    assert results.count(True) == 1 and results.count(False) == 5, results
    assert b.get_user("t1").totp_last_step == 102  # type: ignore[union-attr]


def test_a_lockout_set_on_one_node_is_seen_on_the_other(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = nodes
    a.add_user(User("t1", "Tanaka", "teacher", "s1"))
    until = NOW + timedelta(minutes=15)
    a.record_login_failure("t1", 5, until)
    seen = b.get_user("t1")
    assert seen is not None and (seen.failed_logins, seen.locked_until) == (5, until)
    b.update_user_fields("t1", {"disabled": True})
    assert not a.record_login_success("t1", None)  # disabled on B: A's login does not stand


def test_an_operator_token_revoked_on_one_node_is_refused_on_the_other(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = nodes
    a.add_operator_session(OperatorSession("tok", "admin", NOW, NOW + timedelta(minutes=30),
                                           kind="console", csrf="c"))
    assert b.get_operator_session("tok").revoked is False  # type: ignore[union-attr]
    b.touch_operator_session("tok", NOW + timedelta(hours=1))
    assert a.get_operator_session("tok").expires_at == NOW + timedelta(hours=1)  # type: ignore[union-attr]
    a.revoke_operator_session("tok")
    assert b.get_operator_session("tok").revoked is True  # type: ignore[union-attr]


def test_concurrent_uid_allocation_never_gives_one_uid_twice(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = nodes
    got = race(12, lambda i: (a, b)[i % 2].allocate_desktop_uid(
        f"user{i}", 400_000, 400_099, lambda uid: False))
    assert all(isinstance(u, int) for u in got), got
    assert sorted(got) == list(range(400_000, 400_012))  # type: ignore[type-var]
    # The same teacher from both nodes at once: one uid, for ever.
    same = race(6, lambda i: (a, b)[i % 2].allocate_desktop_uid(
        "late", 400_000, 400_099, lambda uid: False))
    assert len(set(same)) == 1 and same[0] == 400_012, same


def test_a_replay_request_is_decided_once_across_nodes(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    from dataclasses import replace

    a, b = nodes
    asked = ReplayRequest("r1", "rec-1", "replay", "sec.a", "case 14", "t1", "s1", NOW)
    a.add_replay_request(asked)
    decisions = race(6, lambda i: (a, b)[i % 2].decide_replay_request(replace(
        asked, status="approved" if i % 2 else "declined", decided_by=f"sec.{i}",
        decided_at=NOW, expires_at=NOW + timedelta(hours=1) if i % 2 else None)))
    assert decisions.count(None) == 1, decisions
    assert all(isinstance(d, StoreError) and "already been decided" in str(d)
               for d in decisions if d is not None)
    decided = b.get_replay_request("r1")
    assert decided is not None and decided.status in ("approved", "declined")


def test_crl_numbers_are_unique_across_nodes(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = nodes
    numbers = race(10, lambda i: (a, b)[i % 2].next_crl_number())
    assert sorted(numbers) == list(range(1, 11))  # type: ignore[type-var]


def test_two_nodes_migrating_at_once_both_start(pg_dsn: str) -> None:
    opened = race(4, lambda i: PostgresStore(pg_dsn))
    try:
        assert all(isinstance(s, PostgresStore) for s in opened), opened
        applied = [s.migrated for s in opened]  # type: ignore[union-attr]
        assert sorted(applied) == [[], [], [], list(range(1, len(migrations()) + 1))]
    finally:
        for s in opened:
            if isinstance(s, PostgresStore):
                s.close()
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == list(range(1, len(migrations()) + 1))


def test_a_newer_schema_is_refused_with_a_sentence(pg_dsn: str) -> None:
    PostgresStore(pg_dsn).close()
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    with pytest.raises(StoreError, match=r"schema version 999, newer than this gateway knows "
                                         r"\(\d+\): upgrade Staffroom on this node"):
        PostgresStore(pg_dsn)
