"""The registry of every node's live sessions in the state database (Store methods)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.live.registry import SessionRegistry
from gateway.store.base import LiveSessionRow
from gateway.store.sqlite import SqliteStore
from tests.fixtures.stores import StoreBackend

T0 = datetime(2026, 4, 7, 8, 15, tzinfo=UTC)


def row(session: str, node: str, school: str | None = "kita-es") -> LiveSessionRow:
    return LiveSessionRow(id=session, user_id=f"t.{session}", school=school, node=node,
                          started_at=T0, cert_serial="0a1b", remote="192.0.2.7",
                          posture="Windows 11; Defender")


def test_two_stores_on_one_database_see_each_others_sessions(
        store_backend: StoreBackend) -> None:
    a, b = store_backend.open(), store_backend.open()
    a.add_live_session(row("aa01", "a"))
    b.add_live_session(row("bb01", "b", school="minami-es"))
    assert [r.id for r in a.list_live_sessions()] == ["aa01", "bb01"]
    assert [r.node for r in b.list_live_sessions(school="minami-es")] == ["b"]
    assert b.get_live_session("aa01") == row("aa01", "a")
    a.set_live_session_state("aa01", "detached")
    assert b.get_live_session("aa01").state == "detached"  # type: ignore[union-attr]
    assert b.request_live_session_end("aa01", "An officer ended this session: test")
    assert not b.request_live_session_end("nope", "x")
    assert a.list_live_sessions(node="a")[0].end_reason == "An officer ended this session: test"
    a.remove_live_session("aa01")
    assert b.get_live_session("aa01") is None


def test_a_restarting_node_clears_only_its_own_rows(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.db")
    for session, node in (("aa01", "a"), ("aa02", "a"), ("bb01", "b")):
        s.add_live_session(row(session, node))
    assert s.clear_node_live_sessions("a") == 2
    assert [r.id for r in s.list_live_sessions()] == ["bb01"]


def test_a_node_writes_only_its_own_row_of_a_session_another_node_took_over(
        store_backend: StoreBackend) -> None:
    a, b = SessionRegistry(store_backend.open(), "a"), SessionRegistry(store_backend.open(), "b")
    a.store.add_live_session(row("aa01", "a"))
    assert b.holder("aa01") == "a"
    b.store.add_live_session(row("aa01", "b"))  # b resumed it (same id) while a held it
    a.state("aa01", "detached")  # a's late writes leave b's row alone
    a.remove("aa01")
    got = b.get("aa01")
    assert got is not None and (got.node, got.state) == ("b", "attached")
    assert a.holder("aa01") == "b" and a.holder("nope") is None
    b.remove("aa01")
    assert a.get("aa01") is None
