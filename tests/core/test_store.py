"""The SQLite store: round trips, single-use nonces, revocation state, atomic bulk add."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.store.base import CertRecord, Conflict, Nonce, NotFound, User
from gateway.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "state.db")
    yield s
    s.close()


def test_user_round_trip_and_update(store: SqliteStore) -> None:
    u = User("t1", "Tanaka", "teacher", "s1", locked_until=NOW, created_at=NOW)
    store.add_user(u)
    assert store.get_user("t1") == u
    with pytest.raises(Conflict):
        store.add_user(u)
    from dataclasses import replace
    store.update_user(replace(u, disabled=True))
    assert store.get_user("t1").disabled is True  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        store.update_user(replace(u, id="nobody"))


def test_bulk_add_is_all_or_nothing(store: SqliteStore) -> None:
    store.add_user(User("t2", "B", "teacher", "s1"))
    with pytest.raises(Conflict):
        store.add_users([User("t1", "A", "teacher", "s1"), User("t2", "B", "teacher", "s1")])
    assert store.get_user("t1") is None
    assert store.count_users() == 1


def test_nonce_is_single_use_and_expires(store: SqliteStore) -> None:
    store.add_nonce(Nonce("n1", "login", "t1", NOW + timedelta(seconds=60)))
    assert store.take_nonce("n1", "other-purpose", NOW) is None
    assert store.take_nonce("n1", "login", NOW) is not None
    assert store.take_nonce("n1", "login", NOW) is None
    store.add_nonce(Nonce("n2", "login", "t1", NOW + timedelta(seconds=60)))
    assert store.take_nonce("n2", "login", NOW + timedelta(seconds=61)) is None


def test_revoke_twice_is_a_conflict(store: SqliteStore) -> None:
    store.add_cert(CertRecord("ab12", "t1", "s1", NOW, NOW + timedelta(days=100), "PEM",
                              "cio", NOW))
    store.revoke_cert("ab12", "keyCompromise", NOW)
    assert store.get_cert("AB12").revoke_reason == "keyCompromise"  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="already revoked"):
        store.revoke_cert("ab12", "superseded", NOW)
    assert store.next_crl_number() == 1
    assert store.next_crl_number() == 2


def test_state_survives_reopen(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "db")
    s.add_user(User("a", "A", "admin", None))
    s.close()
    s2 = SqliteStore(tmp_path / "db")
    assert s2.get_user("a") is not None
    s2.close()
