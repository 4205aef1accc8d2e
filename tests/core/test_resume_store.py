"""Resume rights in a real store, SQLite and PostgreSQL (gateway.live.resume_store): issued at a
welcome, found by the secret's digest only, taken once across any number of nodes (two stores
on one database), refused after the grace, kept fresh while connected; and the desktops
registry's rows round-trip."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from gateway.live import resume_store
from gateway.live.resume_store import ResumeTickets, digest
from gateway.store.base import Store
from gateway.store.desktops import DesktopRecord
from tests.fixtures.stores import StoreBackend


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stores(store_backend: StoreBackend) -> tuple[Store, Store]:
    """Two nodes sharing one database (SQLite file or PostgreSQL)."""
    return store_backend.open(), store_backend.open()


def issue(tickets: ResumeTickets, secret: str = "s3cret", grace: float = 45.0) -> None:
    tickets.issue(secret, session_id="abc123", user_id="t.sato", cert_serial="0a1b",
                  fence=2, grace=grace)


def test_a_ticket_is_taken_once_across_nodes(stores: tuple[Store, Store]) -> None:
    clock = Clock()
    node_a, node_b = ResumeTickets(stores[0], "a", clock), ResumeTickets(stores[1], "b", clock)
    issue(node_a)
    found = node_b.find("s3cret")
    assert found is not None and (found.session_id, found.node, found.fence) == ("abc123", "a", 2)
    assert node_b.find("wrong") is None
    taken = node_b.take("s3cret")
    assert taken is not None and taken.user_id == "t.sato" and taken.cert_serial == "0a1b"
    assert node_a.take("s3cret") is None and node_b.take("s3cret") is None  # single use


def test_only_the_digest_is_stored(stores: tuple[Store, Store],
                                   store_backend: StoreBackend) -> None:
    issue(ResumeTickets(stores[0], "a", Clock()), secret="never-on-disk-7f3e")
    if store_backend.kind == "sqlite":
        db = sqlite3.connect(store_backend.location)
        rows = db.execute("SELECT * FROM resume_tickets").fetchall()
        db.close()
    else:
        import psycopg

        with psycopg.connect(store_backend.location) as conn:
            rows = conn.execute("SELECT * FROM resume_tickets").fetchall()
    assert len(rows) == 1 and digest("never-on-disk-7f3e") in rows[0]
    assert "never-on-disk-7f3e" not in repr(rows)


def test_a_ticket_after_the_grace_is_refused_and_a_new_secret_replaces_the_old(
        stores: tuple[Store, Store]) -> None:
    clock = Clock()
    tickets = ResumeTickets(stores[0], "a", clock)
    issue(tickets, grace=45)
    clock.now += 44
    assert tickets.find("s3cret") is not None
    clock.now += 2
    assert tickets.find("s3cret") is None and tickets.take("s3cret") is None
    issue(tickets, secret="first")
    issue(tickets, secret="second")  # each welcome replaces the session's secret
    assert tickets.take("first") is None and tickets.take("second") is not None


async def test_connected_sessions_are_kept_fresh(stores: tuple[Store, Store],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resume_store, "HEARTBEAT", 0.05)
    clock = Clock()
    tickets = ResumeTickets(stores[0], "a", clock)
    issue(tickets, grace=10)
    tickets.issue("other", session_id="dropped", user_id="t.ito", cert_serial=None, fence=0,
                  grace=10)
    tickets.keep_fresh(lambda: ["abc123"])
    clock.now += 8
    await asyncio.sleep(0.3)
    await tickets.stop()
    clock.now += 5  # 13 s after issue: only the connected one was pushed forward
    assert tickets.find("s3cret") is not None and tickets.find("other") is None
    ResumeTickets(stores[1], "b", clock).drop("abc123")  # node b's session ending
    assert tickets.find("s3cret") is not None, "another node removed this node's ticket"
    tickets.drop("abc123")
    assert tickets.find("s3cret") is None


def test_desktop_rows_round_trip_by_host(stores: tuple[Store, Store]) -> None:
    a, b = stores
    row = DesktopRecord("t.sato", "a", "host1", 41, 100, 5000, 101, 5001, "/tmp/staffroom-d41",
                        "/tmp/staffroom-d41/server/rfb.sock", "/tmp/staffroom-d41/server/rfbauth",
                        "/data/homes/t.sato", "image", 300001, 300001, True, "user",
                        "STAFFROOM_DESKTOP=ab", 1.5)
    a.put_desktop(row)
    assert b.list_desktops("host1") == [row] and b.list_desktops("host2") == []
    b.claim_desktop("t.sato", "b")
    assert a.get_desktop("t.sato").node == "b"  # type: ignore[union-attr]
    a.drop_desktop("t.sato", "/tmp/another-runtime")  # a newer desktop's row stays
    assert b.get_desktop("t.sato") is not None
    a.drop_desktop("t.sato", row.runtime_dir)
    assert b.get_desktop("t.sato") is None
