"""Desktops outlive the gateway process that started them (issue 12, part C), against real Xvnc,
bubblewrap and a real SQLite store: a second manager on the same registry re-adopts a running
desktop (same Xvnc, same password, attach and stop work), forgets a dead one (audited first,
its leftovers ended), and never adopts — nor kills — a process that reused a recorded pid."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.store.desktops import DesktopRecord
from gateway.store.sqlite import SqliteStore
from gateway.workspace import WorkspaceManager
from gateway.workspace.adoption import DesktopRegistry
from gateway.workspace.sandbox import start_time
from tests.fixtures.workspace import AS_ROOT, needs_sandbox, rfb_vnc_auth, sealed

pytestmark = [pytest.mark.slow, needs_sandbox]

SESSION = ["sh", "-c", "exec xterm"]


@dataclass
class Audit:
    """The registry's hooks, as the gateway's audit log would receive them."""

    adopted: list[DesktopRecord] = field(default_factory=list)
    forgotten: list[tuple[DesktopRecord, str]] = field(default_factory=list)

    async def on_adopted(self, record: DesktopRecord) -> None:
        self.adopted.append(record)

    async def on_forgotten(self, record: DesktopRecord, why: str) -> None:
        # Audited before the clean-up: the runtime dir is still there when we are told.
        assert Path(record.runtime_dir).exists()
        self.forgotten.append((record, why))


@pytest.fixture
def store(workspace_data_dir: Path) -> SqliteStore:
    return SqliteStore(workspace_data_dir / "state.db")


def manager(data_dir: Path, store: SqliteStore, audit: Audit, node: str) -> WorkspaceManager:
    kwargs = sealed(data_dir) if AS_ROOT else {"isolate_network": False,
                                               "home_quota_bytes": None}
    if AS_ROOT:
        kwargs["uid_store"] = store
    return WorkspaceManager(
        data_dir, session_command=SESSION, geometry="800x600", input_method=False,
        display_base=760, **kwargs,
        registry=DesktopRegistry(store, node, on_adopted=audit.on_adopted,
                                 on_forgotten=audit.on_forgotten))


@pytest_asyncio.fixture
async def first(workspace_data_dir: Path, store: SqliteStore) -> AsyncIterator[WorkspaceManager]:
    mgr = manager(workspace_data_dir, store, Audit(), "node-a")
    yield mgr
    await mgr.shutdown()


async def test_a_second_manager_re_adopts_a_running_desktop(
        workspace_data_dir: Path, store: SqliteStore, first: WorkspaceManager) -> None:
    endpoint = await first.attach("t.adopt")
    desktop = first.xvnc.get("t.adopt")
    assert desktop is not None
    xvnc = desktop.xvnc_pid
    record = store.get_desktop("t.adopt")
    assert record is not None and record.node == "node-a"
    assert record.rfb_socket == endpoint.path and os.path.isabs(record.runtime_dir)
    assert endpoint.password and endpoint.password not in repr(record)  # never in a row
    # The gateway process goes away without stopping its desktops.
    await first.shutdown(keep_desktops=True)
    assert xvnc is not None and start_time(xvnc) is not None, "Xvnc died with its manager"

    audit = Audit()
    second = manager(workspace_data_dir, store, audit, "node-a")
    try:
        assert await second.adopt_recorded() == ["t.adopt"]
        assert [r.user_id for r in audit.adopted] == ["t.adopt"] and not audit.forgotten
        again = second.xvnc.get("t.adopt")
        assert again is not None and again.xvnc_pid == xvnc
        assert [row.user for row in second.status()] == ["t.adopt"]
        # Attach gives the same desktop; the password read back opens it.
        same = await second.attach("t.adopt")
        assert same.path == endpoint.path and same.password == endpoint.password
        assert await rfb_vnc_auth("", 0, same.password or "", path=same.path) == 0
        assert await rfb_vnc_auth("", 0, "wrong-pw", path=same.path) == 1
        second.detach("t.adopt")
        await second.stop("t.adopt")
        assert start_time(xvnc) is None and store.get_desktop("t.adopt") is None
        assert not Path(record.runtime_dir).exists()
    finally:
        await second.shutdown()


async def test_a_dead_desktop_is_forgotten_audited_and_cleaned_up(
        workspace_data_dir: Path, store: SqliteStore, first: WorkspaceManager) -> None:
    await first.attach("t.dead")
    record = store.get_desktop("t.dead")
    assert record is not None
    await first.shutdown(keep_desktops=True)
    os.kill(record.server_pid, signal.SIGKILL)  # Xvnc's room dies while no gateway runs
    deadline = time.monotonic() + 10
    while start_time(record.server_pid) == record.server_start:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    audit = Audit()
    second = manager(workspace_data_dir, store, audit, "node-a")
    try:
        assert await second.adopt_recorded() == []
        assert [(r.user_id, why) for r, why in audit.forgotten] == [
            ("t.dead", "Xvnc's room is not running")]
        assert store.get_desktop("t.dead") is None
        assert start_time(record.session_pid) is None, "the half-dead desktop's session lives"
        assert not Path(record.runtime_dir).exists()
    finally:
        await second.shutdown()


async def test_a_reused_pid_is_neither_adopted_nor_killed(
        workspace_data_dir: Path, store: SqliteStore) -> None:
    # Recorded rooms whose pids now belong to unrelated processes (started later, so their
    # start times differ from the recorded ones).
    strangers = [subprocess.Popen(["sleep", "300"]) for _ in range(2)]
    try:
        runtime = Path(workspace_data_dir / "staffroom-desktop799-gone")
        runtime.mkdir()
        socket_path = runtime / "server" / "rfb.sock"
        record = DesktopRecord(
            user_id="t.reused", node="node-a", host=DesktopRegistry(store, "x").host,
            display=799, server_pid=strangers[0].pid,
            server_start=(start_time(strangers[0].pid) or 0) - 7,
            session_pid=strangers[1].pid,
            session_start=(start_time(strangers[1].pid) or 0) - 7,
            runtime_dir=str(runtime), rfb_socket=str(socket_path),
            rfbauth=str(runtime / "server" / "rfbauth"), home=str(workspace_data_dir / "h"),
            home_mode="none", uid=4242, gid=4242, switch=True, sandbox_mode="user",
            marker="STAFFROOM_DESKTOP=feedfacefeedfacefeedface", started_at=time.time())
        store.put_desktop(record)
        audit = Audit()
        mgr = manager(workspace_data_dir, store, audit, "node-a")
        try:
            assert await mgr.adopt_recorded() == []
            assert [why for _, why in audit.forgotten] == ["Xvnc's room is not running"]
            assert all(p.poll() is None for p in strangers), "a stranger with a reused pid died"
            assert store.get_desktop("t.reused") is None and mgr.status() == []
        finally:
            await mgr.shutdown()
    finally:
        for p in strangers:
            p.kill()
            p.wait()
        store.drop_desktop("t.reused")


async def test_another_node_on_the_host_adopts_at_attach_and_the_first_lets_go(
        workspace_data_dir: Path, store: SqliteStore, first: WorkspaceManager) -> None:
    endpoint = await first.attach("t.moved")
    desktop = first.xvnc.get("t.moved")
    assert desktop is not None and desktop.xvnc_pid is not None
    xvnc = desktop.xvnc_pid
    first.detach("t.moved")
    audit = Audit()
    other = manager(workspace_data_dir, store, audit, "node-b")
    try:
        assert await other.adopt_recorded() == []  # at start: only its own node's desktops
        moved = await other.attach("t.moved")  # the teacher's session came to node-b
        assert moved.path == endpoint.path and moved.password == endpoint.password
        assert [(r.user_id, r.node) for r in audit.adopted] == [("t.moved", "node-a")]
        assert store.get_desktop("t.moved").node == "node-b"  # type: ignore[union-attr]
        # node-a's idle reaper lets go of it instead of ending node-b's desktop.
        first.stop_unattached_after = 0
        assert await first.reap_idle() == [] and first.xvnc.get("t.moved") is None
        assert start_time(xvnc) is not None and store.get_desktop("t.moved") is not None
        other.detach("t.moved")
        other.stop_unattached_after = 0
        assert await other.reap_idle() == ["t.moved"]
        assert start_time(xvnc) is None and store.get_desktop("t.moved") is None
    finally:
        await other.shutdown()
