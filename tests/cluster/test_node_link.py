"""The receiving end of the node bus (gateway.live.nodes): what a node does with a signal, and
what it ends when it re-reads the state after a gap — over a real SQLite store and bus."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.cluster.signals import SESSION_END, SESSION_MOVED, USER_END, Signal
from gateway.cluster.sqlite_bus import SqliteBus
from gateway.live.nodes import NodeLink
from gateway.live.registry import SessionRegistry
from gateway.store.base import CertRecord, User
from gateway.store.sqlite import SqliteStore

T0 = datetime(2026, 4, 7, 8, 15, tzinfo=UTC)


@dataclass(eq=False)
class Held:
    """A session this node holds, as the broker's table has it (its end is what we observe)."""

    id: str
    user_id: str
    cert_serial: str | None
    school: str | None = "kita-es"
    remote: str | None = "192.0.2.1"
    posture: str = ""
    started_at: datetime = T0
    ended: bool = False
    reasons: list[str] = field(default_factory=list)

    async def end(self, code: int, text: str) -> None:
        self.ended = True
        self.reasons.append(text)


class Broker:
    """The two entry points NodeLink calls, with the broker's local behaviour."""

    def __init__(self, store: SqliteStore, node: str, held: list[Held]) -> None:
        self.ctx: Any = type("Ctx", (), {"store": store})()
        self.registry = SessionRegistry(store, node)
        self.sessions = {h.id: h for h in held}
        for h in held:
            self.registry.add(h)

    async def terminate(self, session_id: str, reason: str) -> bool:
        s = self.sessions.get(session_id)
        if s is not None:
            await s.end(0, reason)
        return s is not None

    async def hand_over(self, session_id: str, node: str) -> bool:
        s = self.sessions.get(session_id)
        if s is not None:
            s.ended = True
            s.reasons.append(f"moved to {node}")
        return s is not None

    async def end_user_sessions(self, user_id: str, reason: str, *, publish: bool) -> int:
        assert publish is False  # a received signal is never passed on
        held = [s for s in self.sessions.values() if s.user_id == user_id]
        for s in held:
            await s.end(0, reason)
        return len(held)


def world(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "state.db")
    for user in ("t.a", "t.b", "t.c", "t.d"):
        store.add_user(User(user, user, "teacher", "kita-es"))
        store.add_cert(CertRecord(f"{user[-1]}0", user, "kita-es", T0, T0, "pem", "cio", T0))
    return store


async def test_signals_end_only_what_this_node_holds(tmp_path: Path) -> None:
    store = world(tmp_path)
    held = [Held("aa01", "t.a", "a0"), Held("bb01", "t.b", "b0")]
    link = NodeLink(Broker(store, "b", held), SqliteBus(tmp_path / "state.db", "b"))
    await link.on_signal(Signal(SESSION_END, "a", {"session": "aa01", "node": "a",
                                                   "reason": "for node a"}))
    await link.on_signal(Signal(USER_END, "b", {"user": "t.b", "reason": "own echo"}))
    assert not any(h.ended for h in held)  # another node's session; its own publication
    await link.on_signal(Signal(SESSION_END, "a", {"session": "aa01", "node": "b",
                                                   "reason": ""}))
    await link.on_signal(Signal(USER_END, "a", {"user": "t.b", "reason": "Your key was "
                                                "revoked."}))
    assert [h.reasons for h in held] == [["Your school's IT lead ended this session."],
                                         ["Your key was revoked."]]


async def test_after_a_gap_the_state_decides(tmp_path: Path) -> None:
    store = world(tmp_path)
    held = [Held(f"{c}{c}01", f"t.{c}", f"{c}0") for c in "abcd"]
    broker = Broker(store, "b", held)
    bus = SqliteBus(tmp_path / "state.db", "b")
    # While this node heard nothing: a key revoked, an account disabled, an end asked for.
    store.revoke_cert("a0", "keyCompromise", T0)
    store.update_user_fields("t.b", {"disabled": True})
    assert store.request_live_session_end("cc01", "An officer ended this session: test")
    task = asyncio.create_task(NodeLink(broker, bus).run())  # the listener's first resync
    try:
        for _ in range(100):
            if sum(h.ended for h in held) == 3:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.close()
    assert [h.reasons for h in held] == [
        ["Your key has been revoked: ask your school's IT lead for a new one."],
        ["This account is disabled: ask your IT lead."],
        ["An officer ended this session: test"], []]


async def test_a_login_that_read_the_key_before_the_revoke_was_written_is_ended_later(
        tmp_path: Path) -> None:
    """user.end is said before the revocation is written: a session that started here in
    between is checked again once the write has landed."""
    store = world(tmp_path)
    broker = Broker(store, "b", [])
    bus = SqliteBus(tmp_path / "state.db", "b")
    link = NodeLink(broker, bus, recheck_after=0.3)
    await link.on_signal(Signal(USER_END, "a", {"user": "t.a", "reason": "revoked"}))
    late = Held("aa02", "t.a", "a0")  # attached in the gap, its key still valid then
    broker.sessions[late.id] = late
    other = Held("bb02", "t.b", "b0")
    broker.sessions[other.id] = other
    store.revoke_cert("a0", "keyCompromise", T0)  # node a's write lands
    await asyncio.sleep(0.6)
    assert late.reasons == ["Your key has been revoked: ask your school's IT lead for a new one."]
    assert not other.ended
    await bus.close()


async def test_a_session_resumed_elsewhere_is_let_go_only_on_its_old_node(tmp_path: Path) -> None:
    store = world(tmp_path)
    held = [Held("aa01", "t.a", "a0")]
    link = NodeLink(Broker(store, "a", held), SqliteBus(tmp_path / "state.db", "a"))
    for forged in (Signal(SESSION_MOVED, "b", {"session": "aa01", "node": "c", "to": "b"}),
                   Signal(SESSION_MOVED, "c", {"session": "aa01", "node": "a", "to": "b"}),
                   Signal(SESSION_MOVED, "b", {"session": "ffff0000", "node": "a", "to": "b"})):
        await link.on_signal(forged)  # another node's; "to" not its sender; not held here
    assert held[0].reasons == []
    await link.on_signal(Signal(SESSION_MOVED, "b", {"session": "aa01", "node": "a",
                                                     "to": "b"}))
    assert held[0].reasons == ["moved to b"]
