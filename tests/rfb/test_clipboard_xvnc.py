"""Extended Clipboard against a real TigerVNC Xvnc (-AcceptCutText=1 -SendCutText=1), with
xclip as the desktop application that copies and pastes (UTF-8 Japanese both ways)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.rfb.clipboard_codec import EXTENDED_CLIPBOARD
from gateway.rfb.connection import open_rfb
from gateway.rfb.events import ServerCutText
from tests.fixtures.desktops import Desktop, _start, _stop, free_display, free_port, write_password

from .memsurface import MemorySurface
from .pump import Pump

pytestmark = pytest.mark.slow

JAPANESE = "日本語のテキスト"
TO_DESKTOP = "成績表 2027"
ASKED = EXTENDED_CLIPBOARD.to_bytes(4, "big", signed=True)


@pytest.fixture
def clip_desktop(tmp_path: Path) -> Iterator[Desktop]:
    """A small Xvnc with cut text explicitly on in both directions, VNC password per test."""
    if shutil.which("Xvnc") is None or shutil.which("xclip") is None:
        pytest.skip("Xvnc or xclip not installed")
    number, port = free_display(), free_port()
    password, path = write_password(tmp_path)
    cmd = ["Xvnc", f":{number}", "-rfbport", str(port), "-localhost", "-nolisten", "tcp",
           "-geometry", "320x240", "-depth", "24", "-SecurityTypes", "VncAuth",
           "-PasswordFile", str(path), "-AcceptCutText=1", "-SendCutText=1",
           "-desktop", "staffroom-clipboard"]  # fmt: skip
    desktop = Desktop(f":{number}", port, password, 320, 240)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _start(cmd, desktop, procs)
        yield desktop
    finally:
        _stop(desktop._children + procs)


def copy_in_desktop(desktop: Desktop, text: str) -> None:
    """xclip owns the CLIPBOARD selection; -quiet keeps it in the foreground, serving
    pastes until the desktop stops (a forked xclip would escape the fixture's cleanup)."""
    proc = subprocess.Popen(
        ["xclip", "-quiet", "-selection", "clipboard", "-i"], env=desktop.env,
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    desktop._children.append(proc)
    assert proc.stdin is not None
    proc.stdin.write(text.encode())
    proc.stdin.close()


async def paste_in_desktop(desktop: Desktop) -> str:
    proc = await asyncio.create_subprocess_exec(
        "xclip", "-o", "-selection", "clipboard", env=desktop.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")
    return out.decode()


async def connect(desktop: Desktop, clipboard: bool) -> tuple[Pump, list[bytes]]:
    sent: list[bytes] = []
    conn = await open_rfb(desktop.host, desktop.port, desktop.password, MemorySurface(),
                          clipboard=clipboard, on_send=sent.append)  # fmt: skip
    pump = Pump(conn)
    await conn.request_update(False)
    await pump.update()
    return pump, sent


async def next_cut_text(pump: Pump, timeout: float = 10.0) -> ServerCutText:
    async with asyncio.timeout(timeout):
        while True:
            event = await pump.get(timeout)
            if isinstance(event, ServerCutText):
                return event


async def wait_negotiated(pump: Pump, timeout: float = 10.0) -> None:
    # Xvnc's Caps arrives right after SetEncodings; events keep flowing while we wait.
    async with asyncio.timeout(timeout):
        while not pump.conn.client.extended_clipboard:
            await asyncio.sleep(0.02)


async def test_desktop_copy_reaches_us_as_utf8(clip_desktop: Desktop) -> None:
    pump, sent = await connect(clip_desktop, clipboard=True)
    try:
        assert any(ASKED in chunk for chunk in sent), "the pseudo-encoding was not asked for"
        await wait_negotiated(pump)
        copy_in_desktop(clip_desktop, JAPANESE)
        event = await next_cut_text(pump)
        assert event.extended and not event.oversized
        assert event.text == JAPANESE
        assert event.data == JAPANESE.encode()
    finally:
        await pump.stop()


async def test_our_text_reaches_desktop_paste_as_utf8(clip_desktop: Desktop) -> None:
    pump, _ = await connect(clip_desktop, clipboard=True)
    try:
        await wait_negotiated(pump)
        await pump.conn.cut_text(TO_DESKTOP)
        assert await paste_in_desktop(clip_desktop) == TO_DESKTOP
        # Line ends survive the CRLF wire convention, and a second text replaces the first.
        await pump.conn.cut_text("一行目\n二行目")
        assert await paste_in_desktop(clip_desktop) == "一行目\n二行目"
    finally:
        await pump.stop()


async def test_clipboard_off_never_asks_and_classic_text_loses_japanese(
    clip_desktop: Desktop,
) -> None:
    """Why the extension matters: without it Xvnc can only send ISO 8859-1."""
    pump, sent = await connect(clip_desktop, clipboard=False)
    try:
        assert not any(ASKED in chunk for chunk in sent)
        copy_in_desktop(clip_desktop, "café " + JAPANESE)
        event = await next_cut_text(pump)
        assert not event.extended
        assert event.text == "café " + "?" * len(JAPANESE)  # Xvnc replaced every kanji/kana
        await pump.conn.cut_text("café " + TO_DESKTOP)  # classic: ours are replaced too
        assert await paste_in_desktop(clip_desktop) == "café ??? 2027"
    finally:
        await pump.stop()
