"""Desktop lifecycle against real Xvnc: idle stop, shutdown without orphans, restarts, failures."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.workspace import WorkspaceManager, WorkspaceStartFailed
from gateway.workspace.desktop import XvncDesktop
from gateway.workspace.procs import marked_processes
from tests.fixtures.workspace import AS_ROOT, live_pids, needs_sandbox, sealed

pytestmark = [pytest.mark.slow, needs_sandbox]

# `setsid sleep` leaves the session's process group on purpose: shutdown must still kill it.
SESSION = ["sh", "-c", "setsid sleep 600 & openbox & exec xterm"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def manager(workspace_data_dir: Path, clock: FakeClock) -> AsyncIterator[WorkspaceManager]:
    mgr = WorkspaceManager(
        workspace_data_dir,
        session_command=SESSION,
        geometry="800x600",
        stop_unattached_after=60,
        **(sealed(workspace_data_dir) if AS_ROOT else {"isolate_network": False,
                                                       "home_quota_bytes": None}),
        input_method=False,
        clock=clock,
        display_base=720,
    )
    yield mgr
    await mgr.shutdown()


async def wait_for(predicate, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def desktop_of(manager: WorkspaceManager, user: str) -> XvncDesktop:
    found = manager.xvnc.get(user)
    assert found is not None
    return found


def assert_gone(desktop: XvncDesktop, pids: list[int]) -> None:
    assert live_pids(pids) == []
    assert marked_processes(desktop.marker.encode()) == []
    assert not desktop.runtime_dir.exists()
    for room in (desktop.server, desktop.session):
        assert room is not None and room.members() == []


async def test_idle_desktop_is_stopped_after_the_limit(
    manager: WorkspaceManager, clock: FakeClock
) -> None:
    await manager.attach("idle.user")
    desktop = desktop_of(manager, "idle.user")
    await wait_for(lambda: len(marked_processes(desktop.marker.encode())) >= 4, "session")
    pids = marked_processes(desktop.marker.encode())
    assert await manager.reap_idle(clock.now + 10_000) == []  # attached: never idle
    manager.detach("idle.user")
    manager.detach("idle.user")  # extra detaches must not go below zero
    assert manager.status()[0].attached == 0
    assert await manager.reap_idle(clock.now + 59) == []
    assert await manager.reap_idle(clock.now + 60) == ["idle.user"]
    assert manager.status() == []
    assert_gone(desktop, pids)


async def test_shutdown_leaves_no_process_behind(manager: WorkspaceManager) -> None:
    await manager.attach("a.user")
    await manager.attach("b.user")
    desktops = [desktop_of(manager, "a.user"), desktop_of(manager, "b.user")]
    assert desktops[0].spec.display != desktops[1].spec.display
    pids: dict[str, list[int]] = {}
    for d in desktops:
        marker = d.marker.encode()
        await wait_for(lambda m=marker: len(marked_processes(m)) >= 5, "xvnc, bus, sh, sleep…")
        pids[d.marker] = marked_processes(marker)
        assert d.xvnc_pid is not None and d.xvnc_pid in pids[d.marker]
    await manager.shutdown()
    for d in desktops:
        assert_gone(d, pids[d.marker])


async def test_dead_xvnc_means_a_fresh_desktop_on_reattach(manager: WorkspaceManager) -> None:
    first = await manager.attach("c.user")
    old = desktop_of(manager, "c.user")
    assert old.xvnc_pid is not None and old.server is not None
    os.kill(old.xvnc_pid, signal.SIGKILL)
    await old.server.proc.wait()  # its room ends with it
    assert manager.xvnc.get("c.user") is None
    second = await manager.attach("c.user")
    assert second.password != first.password
    assert marked_processes(old.marker.encode()) == []  # the old session was cleaned up


async def test_periodic_reaper_uses_the_clock(manager: WorkspaceManager, clock: FakeClock) -> None:
    await manager.attach("d.user")
    desktop = desktop_of(manager, "d.user")
    manager.detach("d.user")
    manager.start_reaper(interval=0.05)
    await asyncio.sleep(0.2)
    assert manager.xvnc.get("d.user") is not None
    clock.now += 61
    await wait_for(lambda: manager.status() == [], "the reaper")
    # Shut down while the reaper may still be stopping it: the stop must still complete.
    await manager.shutdown()
    assert marked_processes(desktop.marker.encode()) == []
    assert not desktop.runtime_dir.exists()


async def test_missing_session_command_fails_cleanly(workspace_data_dir: Path) -> None:
    mgr = WorkspaceManager(
        workspace_data_dir,
        session_command="/nonexistent/staffroom-session",
        **(sealed(workspace_data_dir) if AS_ROOT else {"isolate_network": False,
                                                       "home_quota_bytes": None}),
        input_method=False,
        display_base=740,
    )
    with pytest.raises(WorkspaceStartFailed, match="could not be started"):
        await mgr.attach("e.user")
    assert mgr.status() == []
    assert list(Path("/tmp").glob("staffroom-desktop74*")) == []
    await mgr.shutdown()
