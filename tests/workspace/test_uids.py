"""One Unix account per teacher: the configured range, refusals in one sentence, and the real
SQLite state DB keeping each teacher's uid stable and never shared."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from gateway.store.sqlite import SqliteStore
from gateway.workspace import InvalidAssignment, WorkspaceManager
from gateway.workspace.uids import DesktopUids, UidRange, check_no_collision, exists_on_host
from tests.fixtures.stores import StoreBackend


@pytest.mark.parametrize(("text", "why"), [
    (None, "sets no desktop_uids range"),
    ("", "sets no desktop_uids range"),
    ("200000", "is not a range like 200000-299999"),
    ("300000-200000", "first <= last"),
    ("0-99999", "must lie within 1000-"),
    ("60000-70000", "includes 65534 (nobody)"),
])
def test_bad_ranges_are_refused_with_a_sentence(text: str | None, why: str) -> None:
    with pytest.raises(InvalidAssignment, match=why.replace("(", r"\(").replace(")", r"\)")):
        UidRange.parse(text)


def test_a_range_holding_an_existing_account_is_refused() -> None:
    accounts = [e.pw_uid for e in pwd.getpwall() if 1000 <= e.pw_uid < 65534]
    if not accounts:
        pytest.skip("this host has no regular account (uid >= 1000) to collide with")
    uid = accounts[0]
    with pytest.raises(InvalidAssignment, match=f"collides with existing accounts.*{uid}"):
        check_no_collision(UidRange.parse(f"{uid}-{uid + 10}"))
    check_no_collision(UidRange.parse("200000-299999"))  # nothing there on a normal host


def test_uids_are_stable_distinct_and_skip_host_accounts(store_backend: StoreBackend) -> None:
    store = store_backend.open()
    accounts = [e.pw_uid for e in pwd.getpwall() if 1000 <= e.pw_uid < 65534]
    first = accounts[0] if accounts else 250000
    uids = DesktopUids(UidRange(first, first + 2), store)
    a, b = uids.uid_for("a.teacher"), uids.uid_for("b.teacher")
    assert a != b and not exists_on_host(a) and not exists_on_host(b)
    assert uids.uid_for("a.teacher") == a
    with pytest.raises(InvalidAssignment, match="is used up"):
        uids.uid_for("c.teacher") if accounts else [uids.uid_for(f"x{i}") for i in range(3)]
    store.close()
    again = store_backend.open()  # a restarted gateway
    assert DesktopUids(UidRange(first, first + 2), again).uid_for("a.teacher") == a
    assert again.desktop_uid("b.teacher") == b
    with pytest.raises(InvalidAssignment, match="outside desktop_uids"):
        DesktopUids(UidRange(first + 100, first + 200), again).uid_for("a.teacher")
    again.close()


def test_root_and_nobody_are_never_handed_out() -> None:
    assert exists_on_host(0) and exists_on_host(65534)


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root gateway switches accounts")
async def test_no_range_means_no_desktop_with_a_sentence(tmp_path: Path) -> None:
    manager = WorkspaceManager(tmp_path, session_command="xterm", desktop_uids=None,
                               uid_store=SqliteStore(tmp_path / "state.db"))
    with pytest.raises(InvalidAssignment, match="sets no desktop_uids range"):
        await manager.attach("a.teacher")
    assert manager.status() == []
    await manager.shutdown()
