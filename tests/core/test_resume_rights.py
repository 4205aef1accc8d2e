"""This node's resume secrets (gateway.live.resume.ResumeRights) over a real store, SQLite and
PostgreSQL: a secret names the live session it was issued for, a new welcome's secret replaces
it, an ended session's secret names nothing, and after the process died (a fresh ResumeRights on
the same database) the Store's ticket still names the session, once."""

from __future__ import annotations

from types import SimpleNamespace

from gateway.live.resume import ResumeRights
from gateway.live.session_machine import Limits
from gateway.store.base import Store
from tests.fixtures.stores import StoreBackend


def live(session_id: str = "abc123", *, attached: bool = True) -> SimpleNamespace:
    """What ResumeRights reads of a LiveSession."""
    return SimpleNamespace(id=session_id, user_id="t.sato", cert_serial="0a1b", ended=False,
                           ws=object() if attached else None, limits=Limits(900, 28800, 45))


async def test_a_secret_names_its_live_session_until_the_next_welcome(
        store_backend: StoreBackend) -> None:
    rights = ResumeRights(store_backend.open(), "a")
    session = live(attached=True)
    sessions = {session.id: session}
    try:
        first = rights.renew(session, 0, lambda: [session.id])  # type: ignore[arg-type]
        target = rights.target(first, sessions)  # type: ignore[arg-type]
        assert target is not None and (target.session_id, target.user_id, target.cert_serial,
                                       target.connected) == ("abc123", "t.sato", "0a1b", True)
        session.ws = None  # the tunnel dropped
        assert rights.target(first, sessions).connected is False  # type: ignore[union-attr,arg-type]
        second = rights.renew(session, 0, lambda: [])  # type: ignore[arg-type]
        assert second != first
        assert rights.target(first, sessions) is None  # type: ignore[arg-type]
        assert rights.target(second, sessions) is not None  # type: ignore[arg-type]
        assert rights.target(None, sessions) is None  # type: ignore[arg-type]
        assert rights.target("not-a-secret", sessions) is None  # type: ignore[arg-type]
        session.ended = True
        assert rights.target(second, sessions) is None  # type: ignore[arg-type]
    finally:
        await rights.stop()


async def test_an_ended_sessions_secret_and_ticket_stop_working(
        store_backend: StoreBackend) -> None:
    store: Store = store_backend.open()
    rights = ResumeRights(store, "a")
    session = live()
    try:
        secret = rights.renew(session, 0, lambda: [])  # type: ignore[arg-type]
        rights.drop(session.id)
        assert rights.target(secret, {}) is None
        assert rights.take(secret) is None
    finally:
        await rights.stop()


async def test_after_the_process_died_the_ticket_names_the_session_once(
        store_backend: StoreBackend) -> None:
    old = ResumeRights(store_backend.open(), "a")
    session = live()
    try:
        secret = old.renew(session, 3, lambda: [])  # type: ignore[arg-type]
    finally:
        await old.stop()
    restarted = ResumeRights(store_backend.open(), "a")  # nothing live in this process
    target = restarted.target(secret, {})
    assert target is not None and (target.session_id, target.connected) == ("abc123", False)
    # Live here again (recovered): the in-memory secret is gone, the Store no longer decides.
    assert restarted.target(secret, {"abc123": live()}) is None  # type: ignore[dict-item]
    ticket = restarted.take(secret)
    assert ticket is not None and (ticket.node, ticket.fence) == ("a", 3)
    assert restarted.take(secret) is None and restarted.target(secret, {}) is None
