"""Against real servers: TigerVNC Xvnc (VncAuth and None) and x11vnc on Xvfb.

The X server's own pixels (ImageGrab over XCB) are the reference for what we decoded.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.rfb.connection import open_rfb
from gateway.rfb.encodings import LOOPBACK_ENCODINGS, Encoding, compress_level
from gateway.rfb.errors import AuthenticationFailed
from tests.fixtures.desktop_view import wait_for_window
from tests.fixtures.desktops import Desktop

from .memsurface import MemorySurface
from .pump import Pump, converge

pytestmark = pytest.mark.slow

_PSEUDO = (Encoding.DESKTOP_SIZE, Encoding.EXTENDED_DESKTOP_SIZE, Encoding.LAST_RECT,
           Encoding.CURSOR)  # fmt: skip
ENCODINGS = {
    "raw": LOOPBACK_ENCODINGS,
    "zrle": (Encoding.COPYRECT, Encoding.ZRLE, *_PSEUDO),
    "tight": (Encoding.COPYRECT, Encoding.TIGHT, compress_level(6), *_PSEUDO),
}
RED = (255, 0, 0)


def red_at(x: int, y: int):
    return lambda screen: screen.getpixel((x, y)) == RED


async def connect(desktop: Desktop, encodings: tuple[int, ...] = LOOPBACK_ENCODINGS):
    surface = MemorySurface()
    conn = await open_rfb(
        desktop.host, desktop.port, desktop.password, surface, encodings=encodings
    )
    pump = Pump(conn)
    # TigerVNC draws the pointer into the framebuffer while it sits away from our last
    # PointerEvent (a client that never moved it would not see it); park it in a corner.
    await conn.pointer(desktop.width - 1, desktop.height - 1, 0)
    await conn.request_update(False)
    await pump.update()
    return surface, pump


@pytest.mark.parametrize("xvnc_desktop", ["VncAuth", "None"], indirect=True)
async def test_xvnc_full_frame_matches_x_server(xvnc_desktop: Desktop) -> None:
    xvnc_desktop.spawn("xterm", "-bg", "red", "-geometry", "20x4+10+10")
    surface, pump = await connect(xvnc_desktop)
    try:
        assert pump.conn.server_init is not None
        assert pump.conn.server_init.name == "staffroom-test"
        assert (surface.width, surface.height) == (xvnc_desktop.width, xvnc_desktop.height)
        await converge(pump, surface, xvnc_desktop.grab, red_at(12, 12))
    finally:
        await pump.stop()


@pytest.mark.parametrize("name", list(ENCODINGS))
async def test_xvnc_incremental_update_shows_new_window(xvnc_desktop: Desktop, name: str) -> None:
    surface, pump = await connect(xvnc_desktop, ENCODINGS[name])
    try:
        assert surface.rgb(300, 200) != RED
        xvnc_desktop.spawn("xterm", "-bg", "red", "-fg", "yellow", "-geometry", "40x10+250+150",
                           "-e", "sh", "-c", "ls -l /usr/bin | head -40; sleep 60")  # fmt: skip
        await converge(pump, surface, xvnc_desktop.grab, red_at(300, 200))
        assert surface.rgb(300, 200) == RED
    finally:
        await pump.stop()


async def test_xvnc_pointer_and_keys_land(xvnc_desktop: Desktop, tmp_path: Path) -> None:
    typed = tmp_path / "typed.txt"
    xvnc_desktop.spawn("xterm", "-geometry", "40x10+0+0", "-e", "sh", "-c", f"cat > {typed}")
    _surface, pump = await connect(xvnc_desktop)
    try:
        await pump.conn.pointer(123, 77, 0)
        deadline = time.monotonic() + 10
        while "x:123 y:77" not in xvnc_desktop.run("xdotool", "getmouselocation"):
            assert time.monotonic() < deadline, "pointer did not move"
            await asyncio.sleep(0.05)
        # Keys go to the focused window: wait for the xterm to be mapped and focus it.
        window = wait_for_window(xvnc_desktop.env, "xterm")
        xvnc_desktop.run("xdotool", "windowfocus", "--sync", window)
        for keysym in (ord("h"), ord("i"), 0xFF0D):  # h, i, Return
            await pump.conn.key(keysym, True)
            await pump.conn.key(keysym, False)
        deadline = time.monotonic() + 10
        while not (typed.exists() and typed.read_text() == "hi\n"):
            assert time.monotonic() < deadline, f"typed: {typed.read_text()!r}"
            await asyncio.sleep(0.05)
    finally:
        await pump.stop()


async def test_xvnc_wrong_password_is_authentication_failed(xvnc_desktop: Desktop) -> None:
    with pytest.raises(AuthenticationFailed):
        await open_rfb(xvnc_desktop.host, xvnc_desktop.port, "wrong!!", MemorySurface())


async def test_x11vnc_full_and_incremental_frames(x11vnc_desktop: Desktop) -> None:
    surface, pump = await connect(x11vnc_desktop, ENCODINGS["zrle"])
    try:
        await converge(pump, surface, x11vnc_desktop.grab)
        x11vnc_desktop.spawn("xterm", "-bg", "red", "-geometry", "30x6+100+100")
        await converge(pump, surface, x11vnc_desktop.grab, red_at(110, 110))
    finally:
        await pump.stop()
