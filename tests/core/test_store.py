"""The Store contract on both backends (SQLite, PostgreSQL): round trips, single-use nonces,
revocation state, atomic bulk add. SQLite-only behaviour (a full disk) is marked so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.store.base import CertRecord, Conflict, Nonce, NotFound, Store, User
from gateway.store.sqlite import SqliteStore
from tests.fixtures.stores import StoreBackend

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def test_user_round_trip_and_update(store: Store) -> None:
    u = User("t1", "Tanaka", "teacher", "s1", locked_until=NOW, created_at=NOW)
    store.add_user(u)
    assert store.get_user("t1") == u
    with pytest.raises(Conflict):
        store.add_user(u)
    updated = store.update_user_fields("t1", {"disabled": True})
    assert updated.disabled is True and store.get_user("t1") == updated
    with pytest.raises(NotFound):
        store.update_user_fields("nobody", {"disabled": True})
    with pytest.raises(ValueError):
        store.update_user_fields("t1", {"id": "t2"})  # only columns that may change


def test_a_field_update_never_writes_back_the_rest_of_a_stale_row(store: Store) -> None:
    """The tunnel used to write back the whole row it read at login, which undid a disable
    made meanwhile. Now only the fields a writer means to change are written."""
    store.add_user(User("t1", "Tanaka", "teacher", "s1", failed_logins=2))
    stale = store.get_user("t1")
    store.update_user_fields("t1", {"disabled": True})  # an officer, during the login
    assert stale is not None and not stale.disabled
    store.record_login_failure("t1", stale.failed_logins + 1, None)
    now = store.get_user("t1")
    assert now is not None and now.disabled and now.failed_logins == 3


def test_login_success_is_a_compare_and_set(store: Store) -> None:
    store.add_user(User("t1", "Tanaka", "teacher", "s1", failed_logins=3, totp_last_step=100))
    assert store.record_login_success("t1", 101)
    user = store.get_user("t1")
    assert user is not None and (user.failed_logins, user.totp_last_step) == (0, 101)
    # A second login racing with the same code loses: the step is no longer newer.
    assert not store.record_login_success("t1", 101)
    assert store.record_login_success("t1", None)  # no code used: nothing to compare
    # Disabled while the login was being decided: the login's write does not happen.
    store.update_user_fields("t1", {"disabled": True, "failed_logins": 4})
    assert not store.record_login_success("t1", 102)
    user = store.get_user("t1")
    assert user is not None and user.disabled and user.failed_logins == 4
    assert user.totp_last_step == 101


def test_bulk_add_is_all_or_nothing(store: Store) -> None:
    store.add_user(User("t2", "B", "teacher", "s1"))
    with pytest.raises(Conflict):
        store.add_users([User("t1", "A", "teacher", "s1"), User("t2", "B", "teacher", "s1")])
    assert store.get_user("t1") is None
    assert store.count_users() == 1


def test_nonce_is_single_use_and_expires(store: Store) -> None:
    store.add_nonce(Nonce("n1", "login", "t1", NOW + timedelta(seconds=60)))
    assert store.take_nonce("n1", "other-purpose", NOW) is None
    assert store.take_nonce("n1", "login", NOW) is not None
    assert store.take_nonce("n1", "login", NOW) is None
    store.add_nonce(Nonce("n2", "login", "t1", NOW + timedelta(seconds=60)))
    assert store.take_nonce("n2", "login", NOW + timedelta(seconds=61)) is None


def test_revoke_twice_is_a_conflict(store: Store) -> None:
    store.add_cert(CertRecord("ab12", "t1", "s1", NOW, NOW + timedelta(days=100), "PEM",
                              "cio", NOW))
    store.revoke_cert("ab12", "keyCompromise", NOW)
    assert store.get_cert("AB12").revoke_reason == "keyCompromise"  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="already revoked"):
        store.revoke_cert("ab12", "superseded", NOW)
    assert store.next_crl_number() == 1
    assert store.next_crl_number() == 2


def test_state_survives_reopen(store_backend: StoreBackend) -> None:
    s = store_backend.open()
    s.add_user(User("a", "A", "admin", None))
    s.close()
    s2 = store_backend.open()
    assert s2.get_user("a") is not None
    s2.close()


def test_a_full_disk_is_one_sentence_and_the_store_carries_on(tmp_path: Path) -> None:  # SQLite
    """SQLite on a full disk: StoreUnavailable with one sentence (no sqlite3 traceback), the
    failed transaction rolled back, and the next write works once there is space."""
    import os
    import subprocess

    from gateway.store.base import StoreUnavailable

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        s = SqliteStore(mount / "state.db")
        filler = mount / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        with pytest.raises(StoreUnavailable, match="disk is full") as refused:
            for i in range(10_000):  # until the WAL needs a page the disk cannot give
                s.add_user(User(f"t{i}", "x" * 4000, "teacher", "s1"))
        assert s.write_error == str(refused.value)
        before = s.count_users()
        filler.unlink()
        s.add_user(User("after", "A", "teacher", "s1"))
        assert s.write_error is None and s.count_users() == before + 1
        s.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_operator_sessions_touch_revoke_and_keep(store: Store) -> None:
    from gateway.store.base import OperatorSession

    def session(token: str, user: str = "admin") -> OperatorSession:
        return OperatorSession(token, user, NOW, NOW + timedelta(minutes=30), kind="console",
                               csrf=f"csrf-{token}")

    for token in ("h1", "h2", "h3"):
        store.add_operator_session(session(token))
    store.add_operator_session(session("other", user="cio"))
    assert store.get_operator_session("h1") == session("h1")
    store.touch_operator_session("h1", NOW + timedelta(hours=1))
    assert store.get_operator_session("h1").expires_at == NOW + timedelta(hours=1)  # type: ignore[union-attr]
    assert store.revoke_user_operator_sessions("admin", keep="h1") == 2
    assert store.revoke_user_operator_sessions("admin", keep="h1") == 0
    assert [store.get_operator_session(t).revoked for t in ("h1", "h2", "h3", "other")] == [  # type: ignore[union-attr]
        False, True, True, False]
    store.revoke_operator_session("h1")
    store.touch_operator_session("h1", NOW + timedelta(hours=5))  # a revoked one stays put
    revoked = store.get_operator_session("h1")
    assert revoked is not None and revoked.revoked
    assert revoked.expires_at == NOW + timedelta(hours=1)
    assert store.get_operator_session("missing") is None


def test_lists_filter_and_order(store: Store) -> None:
    store.add_users([User("b", "B", "teacher", "s2"), User("a", "A", "teacher", "s1"),
                     User("c", "C", "cio", "s1")])
    assert [u.id for u in store.list_users()] == ["a", "b", "c"]
    assert [u.id for u in store.list_users("s1")] == ["a", "c"]
    for serial, user, school, at in (("02", "a", "s1", 2), ("01", "b", "s2", 1),
                                     ("03", "a", "s1", 3)):
        store.add_cert(CertRecord(serial, user, school, NOW, NOW + timedelta(days=1), "PEM",
                                  "cio", NOW + timedelta(minutes=at)))
    assert [c.serial for c in store.list_certs()] == ["01", "02", "03"]
    assert [c.serial for c in store.list_certs(user_id="a")] == ["02", "03"]
    assert [c.serial for c in store.list_certs(school="s2")] == ["01"]
    assert store.list_certs(user_id="a", school="s2") == []
    with pytest.raises(NotFound):
        store.revoke_cert("ff", "superseded", NOW)


def test_workspace_assignment_is_replaced(store: Store) -> None:
    from gateway.store.base import WorkspaceAssignment

    assert store.get_assignment("t1") is None
    store.set_assignment(WorkspaceAssignment("t1", "vnc", "10.0.0.5", 5900, "pw"))
    store.set_assignment(WorkspaceAssignment("t1", "xvnc"))
    assert store.get_assignment("t1") == WorkspaceAssignment("t1", "xvnc")


def test_desktop_uids_are_stable_distinct_and_bounded(store: Store) -> None:
    from gateway.store.base import StoreError

    def never(uid: int) -> bool:
        return uid == 500_001  # e.g. an account that exists on the host

    assert store.desktop_uid("a") is None
    a = store.allocate_desktop_uid("a", 500_000, 500_002, never)
    b = store.allocate_desktop_uid("b", 500_000, 500_002, never)
    assert (a, b) == (500_000, 500_002)
    assert store.allocate_desktop_uid("a", 500_000, 500_002, never) == a
    assert store.desktop_uid("b") == b
    with pytest.raises(StoreError, match="500000-500002 is used up"):
        store.allocate_desktop_uid("c", 500_000, 500_002, never)
    assert store.desktop_uid("c") is None


def test_both_backends_implement_every_store_method() -> None:
    """A method added to the Store Protocol must be added to every backend (the PostgreSQL
    one included), with the same parameters."""
    import inspect

    from gateway.store.postgres import PostgresStore

    wanted = {n: inspect.signature(f) for n, f in vars(Store).items()
              if callable(f) and not n.startswith("_")}
    for backend in (SqliteStore, PostgresStore):
        missing = sorted(set(wanted) - set(dir(backend)))
        assert not missing, f"{backend.__name__} lacks {missing}"
        for name, signature in wanted.items():
            assert list(inspect.signature(getattr(backend, name)).parameters) == list(
                signature.parameters), f"{backend.__name__}.{name}"
