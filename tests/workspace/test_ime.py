"""Japanese input on a real desktop: fcitx5 + mozc run, and 半角/全角 toggles the input method."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.workspace import WorkspaceManager
from gateway.workspace.desktop import XvncDesktop
from tests.fixtures.workspace import AS_ROOT, needs_sandbox, sealed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not AS_ROOT, reason="needs root to give the desktop its own account"),
    needs_sandbox,
]

INACTIVE, ACTIVE = "1", "2"  # fcitx5-remote's answers


@pytest_asyncio.fixture
async def desktop(workspace_data_dir: Path) -> AsyncIterator[XvncDesktop]:
    mgr = WorkspaceManager(
        workspace_data_dir,
        session_command=["sh", "-c", "openbox & exec xterm"],
        **sealed(workspace_data_dir),
        input_method=True,
        display_base=760,
    )
    try:
        await mgr.attach("t.suzuki")
        found = mgr.xvnc.get("t.suzuki")
        assert found is not None
        yield found
    finally:
        await mgr.shutdown()


def run(desktop: XvncDesktop, *argv: str, as_desktop_user: bool = True) -> str:
    """Run a client of the desktop inside its session room, as its teacher (D-Bus only admits
    the bus owner's uid)."""
    done = subprocess.run(desktop.enter_argv(list(argv)), env=desktop.session_env(),
                          capture_output=True, text=True, timeout=10)
    return done.stdout.strip() if done.returncode == 0 else ""


async def wait_state(desktop: XvncDesktop, want: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (state := run(desktop, "fcitx5-remote", as_desktop_user=True)) != want:
        assert time.monotonic() < deadline, f"fcitx5 state stayed {state!r}, wanted {want}"
        await asyncio.sleep(0.1)


def fcitx_debug_info(desktop: XvncDesktop) -> str:
    """fcitx5's own list of input contexts, one line each with program, frontend and focus."""
    return run(
        desktop,
        "dbus-send", "--session", "--print-reply", "--dest=org.fcitx.Fcitx5", "/controller",
        "org.fcitx.Fcitx.Controller1.DebugInfo",
        as_desktop_user=True,
    )  # fmt: skip


async def focus_xterm(desktop: XvncDesktop, window: str, deadline: float) -> None:
    """Keys reach fcitx5 only once xterm's XIM input context exists and has the focus. xterm
    tells fcitx5 about focus on FocusIn, which it may have had before its IC existed, so click
    into it as a teacher would, until fcitx5 sees the focus."""
    while not re.search(r"program:xterm frontend:xim .*focus:1", fcitx_debug_info(desktop)):
        run(desktop, "xdotool", "mousemove", "--window", window, "20", "20", "click", "1")
        info = fcitx_debug_info(desktop)
        assert time.monotonic() < deadline, f"no focused xterm IC: {info}"
        await asyncio.sleep(0.1)


async def test_zenkaku_hankaku_toggles_the_input_method(desktop: XvncDesktop) -> None:
    deadline = time.monotonic() + 10
    while not (window := run(desktop, "xdotool", "search", "--class", "xterm").split()):
        assert time.monotonic() < deadline, "xterm never appeared"
        await asyncio.sleep(0.1)
    await focus_xterm(desktop, window[0], deadline)
    await wait_state(desktop, INACTIVE)
    run(desktop, "xdotool", "key", "Zenkaku_Hankaku")
    await wait_state(desktop, ACTIVE)  # mozc loads on first use: allow it a few seconds
    assert run(desktop, "fcitx5-remote", "-n", as_desktop_user=True) == "mozc"
    # Off again. In CI runs the key was now and then lost right after mozc's first load (fcitx5
    # stayed on; its XIM side, not the gateway, which is not in this test), three presses in a
    # row once. A teacher would click into the window and press 半角/全角 again, and so does the
    # test, at most three times, 4 s apart; never once fcitx5 is off (a late key would turn it
    # back on).
    for _ in range(3):
        if run(desktop, "fcitx5-remote", as_desktop_user=True) == INACTIVE:
            break
        await focus_xterm(desktop, window[0], time.monotonic() + 10)
        run(desktop, "xdotool", "key", "Zenkaku_Hankaku")
        with contextlib.suppress(AssertionError):
            await wait_state(desktop, INACTIVE, timeout=4.0)
            break
    await wait_state(desktop, INACTIVE, timeout=0.5)


async def test_session_environment_is_set_up_for_japanese(desktop: XvncDesktop) -> None:
    assert desktop.session is not None and desktop.session.init_pid is not None
    environ = dict(
        entry.split("=", 1)
        for entry in Path(f"/proc/{desktop.session.init_pid}/environ").read_text().split("\0")
        if "=" in entry
    )
    assert environ["XMODIFIERS"] == "@im=fcitx"
    assert environ["GTK_IM_MODULE"] == environ["QT_IM_MODULE"] == "fcitx"
    assert environ["LANG"] in {"ja_JP.UTF-8", "C.UTF-8"}
    assert "Noto" in run(desktop, "fc-list", ":lang=ja", "family")
