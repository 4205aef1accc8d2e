"""A real per-user TigerVNC desktop, started once for this module and checked from outside."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.workspace import Endpoint, WorkspaceManager
from gateway.workspace.desktop import FRAME_RATE, XvncDesktop
from tests.fixtures.workspace import (
    AS_ROOT,
    in_desktop,
    needs_sandbox,
    rfb_vnc_auth,
    sealed,
    tcp_listening_in,
    unmount_under,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"), needs_sandbox]

SESSION = ["sh", "-c", "openbox & exec xterm"]
GATEWAY_SECRET = "STAFFROOM_TEST_GATEWAY_SECRET"


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="staffroom-ws-test-"))
    path.chmod(0o711)  # the desktop account must reach DATA_DIR/homes/<user>
    yield path
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def manager(data_dir: Path) -> AsyncIterator[WorkspaceManager]:
    os.environ[GATEWAY_SECRET] = "must-not-leak"  # the desktop must not inherit our environment
    mgr = WorkspaceManager(
        data_dir,
        session_command=SESSION,
        geometry="1024x768",
        stop_unattached_after=60,
        **(sealed(data_dir) if AS_ROOT else {"isolate_network": False,
                                             "home_quota_bytes": None}),
        input_method=False,
        display_base=700,
    )
    try:
        yield mgr
    finally:
        del os.environ[GATEWAY_SECRET]
        await mgr.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def endpoint(manager: WorkspaceManager) -> Endpoint:
    started = time.monotonic()
    ep = await manager.attach("t.tanaka")
    assert time.monotonic() - started < 2.0, "a desktop should start in under 2 s"
    return ep


@pytest.fixture
def desktop(manager: WorkspaceManager, endpoint: Endpoint) -> XvncDesktop:
    found = manager.xvnc.get("t.tanaka")
    assert found is not None
    return found


def x_run(desktop: XvncDesktop, *argv: str, auth: bool = True) -> subprocess.CompletedProcess[str]:
    """An X client inside the desktop's session room."""
    env = desktop.session_env()
    if not auth:
        del env["XAUTHORITY"]
    return subprocess.run(desktop.enter_argv(list(argv)), env=env, capture_output=True,
                          text=True, timeout=10)


async def test_rfb_is_served_only_on_a_unix_socket(
    endpoint: Endpoint, desktop: XvncDesktop
) -> None:
    assert endpoint.path == str(desktop.rfb_socket) and endpoint.port == 0
    assert desktop.rfb_socket.is_socket()
    pid = desktop.xvnc_pid
    assert pid is not None
    assert tcp_listening_in(pid) == [], "Xvnc (or anything in its namespace) listens on TCP"
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert argv[argv.index(b"-rfbport") + 1] == b"-1"


async def test_rfbauth_is_private_to_the_desktop_account(desktop: XvncDesktop) -> None:
    st = desktop.rfbauth.stat()
    assert st.st_mode & 0o777 == 0o600
    assert desktop.rfbauth.parent.stat().st_mode & 0o777 == 0o700
    assert st.st_uid == desktop.spec.account.uid
    if AS_ROOT:
        assert st.st_uid not in (0, 65534)
    # The session's room does not even see the server's directory.
    seen = in_desktop(desktop, "ls /run/staffroom; cat /run/staffroom/rfbauth 2>&1 || true")
    assert "rfbauth" not in seen.stdout.split(), seen.stdout
    assert "No such file" in seen.stdout


async def test_wrong_vnc_password_is_rejected_right_one_accepted(endpoint: Endpoint) -> None:
    assert endpoint.password and len(endpoint.password) == 8
    wrong = (
        "x" + endpoint.password[1:] if endpoint.password[0] != "x" else "y" + endpoint.password[1:]
    )
    assert await rfb_vnc_auth("", 0, wrong, path=endpoint.path) == 1
    assert await rfb_vnc_auth("", 0, endpoint.password, path=endpoint.path) == 0


async def test_x_display_needs_the_cookie(desktop: XvncDesktop) -> None:
    assert x_run(desktop, "xdpyinfo", auth=False).returncode != 0
    info = x_run(desktop, "xdpyinfo")
    assert info.returncode == 0, info.stderr
    assert "1024x768 pixels" in info.stdout


async def test_session_command_runs_on_the_desktop(desktop: XvncDesktop) -> None:
    deadline = time.monotonic() + 10
    while (found := x_run(desktop, "xdotool", "search", "--class", "xterm")).returncode != 0:
        assert time.monotonic() < deadline, "xterm window never appeared"
        await asyncio.sleep(0.1)
    assert found.stdout.strip()


async def test_session_gets_a_fresh_environment(desktop: XvncDesktop) -> None:
    assert desktop.session is not None
    for pid in desktop.session.members():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue  # it ended since the listing: nothing of it left to leak
        assert not any(entry.startswith(GATEWAY_SECRET.encode()) for entry in environ)
    shown = in_desktop(desktop, "echo $HOME; pwd")
    assert shown.stdout.split() == ["/home/t.tanaka", "/home/t.tanaka"]
    assert desktop.spec.home == desktop.spec.home.parent / "t.tanaka"
    assert desktop.spec.home.parent.name == "homes"


async def test_clipboard_into_the_desktop_is_off_in_xvnc(desktop: XvncDesktop) -> None:
    """Nothing is pasted into the desktop; copies inside it go only to the gateway, which
    drops and audits them (the primary selection is never sent)."""
    assert desktop.xvnc_pid is not None
    argv = Path(f"/proc/{desktop.xvnc_pid}/cmdline").read_bytes().split(b"\0")
    for flag in (b"-AcceptCutText=0", b"-SendCutText=1", b"-SendPrimary=0", b"-AllowOverride="):
        assert flag in argv


async def test_xvnc_runs_its_frame_clock_at_the_gateways_rate(desktop: XvncDesktop) -> None:
    """A typed key waits half a frame of Xvnc's clock for its first update: the running server
    has FRAME_RATE, not TigerVNC's 60 (what it saves is measured by bench.run, part AP). The
    desktop's own vncconfig is the lock-down's notice, so the server's argv is read."""
    assert desktop.xvnc_pid is not None
    argv = Path(f"/proc/{desktop.xvnc_pid}/cmdline").read_bytes().split(b"\0")
    assert argv[argv.index(b"-FrameRate") + 1] == str(FRAME_RATE).encode()
    assert FRAME_RATE > 60


async def test_reattach_returns_the_same_desktop(
    manager: WorkspaceManager, endpoint: Endpoint
) -> None:
    again = await manager.attach("t.tanaka")
    assert again == endpoint
    assert again.password == endpoint.password
    rows = manager.status()
    assert [(r.user, r.display, r.port, r.attached) for r in rows] == [
        ("t.tanaka", endpoint.display, endpoint.port, 2)
    ]
    manager.detach("t.tanaka")
    assert manager.status()[0].attached == 1


async def test_idle_reaper_keeps_attached_desktops(manager: WorkspaceManager) -> None:
    assert await manager.reap_idle(time.monotonic() + 10_000) == []
    assert manager.xvnc.get("t.tanaka") is not None
