"""Watch live, in system Chromium: the console shows a session's display stream read-only in a
dialog that scales it to fit, never sends a byte back (no Acks, no keys, no pointer, whatever the
officer does on the canvas), shows the End sentence as text, and "Stop watching" closes the
socket. First against a stand-in speaking the watch protocol with the real pipeline's frames,
then against the real gateway's /api/v1/sessions/{id}/watch on a real Xvnc desktop."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image
from playwright.async_api import Browser, Page

from tests.console.pixels import canvas_image, same, wait_for_picture
from tests.console.watch_stand_in import SESSION, WatchStandIn
from tests.fixtures.agent import Agent
from tests.fixtures.console_media import WATCHED, Media, open_page, signed_in_page
from tests.fixtures.desktop_view import close_enough, desktop_of, wait_for_window, x_screenshot
from tests.fixtures.recording import record_session

pytestmark = pytest.mark.slow

CANVAS = "#watch-canvas"
ROW = f"#sessions-table tr[data-session='{SESSION['id']}']"


async def test_watching_shows_the_stream_sends_nothing_and_shows_the_end(
    chromium: Browser, tmp_path: Path, recording_key: ec.EllipticCurvePrivateKey
) -> None:
    rec = record_session(tmp_path / "rec", recording_key, frames=8)
    stand = WatchStandIn(rec)
    origin = await stand.start()
    try:
        c = await open_page(chromium, origin)
        page = c.page
        await page.goto(f"{origin}/console/#sessions")
        await page.click(f"{ROW} button[data-action=watch]")
        await page.wait_for_selector("#watch[open] #watch-status[data-state=live]")
        assert await page.text_content("#watch-title") == "Watching t-0042"
        # The whole frame and the first live frames, exactly as the teacher's screen was.
        await wait_for_picture(page, CANVAS, rec.screens[stand.first_frames - 1][1])
        # Scaled to fit its box, keeping the desktop's shape.
        box = await page.eval_on_selector(CANVAS, "c => [c.width, c.height, "
                                          "c.getBoundingClientRect().width, "
                                          "c.getBoundingClientRect().height, "
                                          "c.parentElement.clientWidth, "
                                          "c.parentElement.clientHeight]")
        width, height, css_w, css_h, box_w, box_h = box
        assert css_w > width and css_w <= box_w and css_h <= box_h
        assert abs(css_w / css_h - width / height) < 0.02
        # Whatever the officer does on the canvas, nothing goes back.
        await page.click(CANVAS)
        await page.mouse.wheel(0, 200)
        await page.click(CANVAS, button="right")
        await page.keyboard.type("rm -rf ~")
        await page.keyboard.press("Enter")
        stand.release.set()
        await wait_for_picture(page, CANVAS, rec.screens[-1][1])
        stand.finish.set()
        await page.wait_for_selector("#watch-status[data-state=ended]")
        text = await page.text_content("#watch-status") or ""
        # The gateway's sentence, as text: markup in it is shown, never interpreted.
        assert text == "The session ended: An officer ended this session: <b>授業終了</b>"
        await asyncio.wait_for(stand.closed.wait(), 5)
        assert stand.received == [] and stand.connections == 1
        # The picture stays up after the end, until the officer closes the dialog.
        assert await canvas_image(page, CANVAS) is not None
        await page.click("#watch-stop")
        assert not await page.eval_on_selector("#watch", "d => d.open")

        # "Stop watching" while live closes the socket at once.
        stand.release, stand.finish, stand.closed = (asyncio.Event(), asyncio.Event(),
                                                     asyncio.Event())
        await page.click(f"{ROW} button[data-action=watch]")
        await page.wait_for_selector("#watch[open] #watch-status[data-state=live]")
        await page.click("#watch-stop")
        await asyncio.wait_for(stand.closed.wait(), 5)
        assert not await page.eval_on_selector("#watch", "d => d.open")
        assert stand.received == [] and stand.connections == 2
        assert c.errors == [] and c.foreign() == []
        await c.context.close()
    finally:
        stand.release.set()
        stand.finish.set()
        await stand.stop()


async def wait_until(predicate: Callable[[], Awaitable[bool]], what: str,
                     timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.1)  # polling a condition, under the deadline above


def pointer(xenv: dict[str, str]) -> tuple[int, int]:
    loc = subprocess.run(["xdotool", "getmouselocation"], env=xenv, text=True,
                         capture_output=True, check=True, timeout=10).stdout
    x, y = (int(v) for v in re.findall(r"[xy]:(\d+)", loc)[:2])
    return x, y


async def test_an_officer_watches_a_real_session_read_only_until_it_is_terminated(
    console_media: Media, chromium: Browser
) -> None:
    cw = console_media.cw
    agent = Agent(cw.world, WATCHED, cw.freshclam)
    try:
        url = agent.viewer_url()
        _, xenv = desktop_of(cw.world, WATCHED)
        wait_for_window(xenv, "xterm")
        teacher = await (await chromium.new_context(viewport={"width": 1280, "height": 720})
                         ).new_page()
        await teacher.goto(url)
        session_id = next(s["id"] for s in cw.sessions() if s["user"] == WATCHED)

        c = await signed_in_page(chromium, cw, "sec.watcher", locale="ja-JP")
        page = c.page
        sent: list[object] = []  # what the watch page sends on its socket: must stay empty
        page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(f)))
        row = f"#sessions-table tr[data-session='{session_id}']"
        assert await page.text_content(f"{row} button[data-action=watch]") == "見守る"
        await page.click(f"{row} button[data-action=watch]")
        await page.wait_for_selector("#watch[open] #watch-status[data-state=live]",
                                     timeout=15_000)

        async def shows_desktop() -> bool:
            image = await canvas_image(page, CANVAS)
            return (image is not None and len(image.getcolors(1 << 20) or []) > 2
                    and close_enough(image, x_screenshot(xenv)) > 0.97)
        await wait_until(shows_desktop, "the watch canvas never showed the desktop")

        # The officer clicks and types into the picture: none of it reaches the desktop. The
        # teacher's own pointer move afterwards is the barrier (it takes the same way in).
        await mouse_to(teacher, 1500, 900)
        await wait_until(lambda: _at(xenv, (1500, 900)), "the teacher's pointer move")
        before = x_screenshot(xenv)
        await page.click(CANVAS)
        await page.keyboard.type("echo watcher")
        await page.keyboard.press("Enter")
        await mouse_to(teacher, 1400, 800)
        await wait_until(lambda: _at(xenv, (1400, 800)), "the teacher's second pointer move")
        assert same(x_screenshot(xenv), before), "the watcher's input reached the desktop"
        assert sent == []

        # What the teacher does shows up in the watcher's picture.
        box = await teacher.locator("canvas").bounding_box()
        assert box is not None
        await teacher.mouse.click(box["x"] + 200 * box["width"] / 1920,
                                  box["y"] + 150 * box["height"] / 1080)
        await teacher.keyboard.type("echo teacher-typed")
        await wait_until(lambda: _changed(xenv, before), "the teacher's typing on the desktop")
        await wait_until(shows_desktop, "the watch canvas did not follow the teacher")

        me = await cw.sign_in("sec.watcher")
        status, data, _ = await cw.request(
            "GET", f"/api/v1/audit?kind=session.watch&user={WATCHED}&limit=50",
            cookie=me.cookie)
        assert status == 200, data
        assert any(r["actor"] == "sec.watcher" and r["outcome"] == "ok"
                   for r in data["records"])
        status, data, _ = await cw.request(
            "POST", f"/api/v1/sessions/{session_id}/terminate", cookie=me.cookie,
            origin=cw.origin, csrf=me.csrf, body={"reason": "見守りテスト"})
        assert status == 200, data
        await page.wait_for_selector("#watch-status[data-state=ended]", timeout=15_000)
        text = await page.text_content("#watch-status") or ""
        assert text.startswith("セッションが終了しました：") and "見守りテスト" in text
        await page.click("#watch-stop")
        assert sent == [] and c.errors == [] and c.foreign() == []
        await c.context.close()
    finally:
        agent.stop()


async def mouse_to(page: Page, x: int, y: int) -> None:
    box = await page.locator("canvas").bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + (x + 0.5) * box["width"] / 1920,
                          box["y"] + (y + 0.5) * box["height"] / 1080)


async def _at(xenv: dict[str, str], where: tuple[int, int]) -> bool:
    x, y = pointer(xenv)
    return abs(x - where[0]) <= 2 and abs(y - where[1]) <= 2


async def _changed(xenv: dict[str, str], before: Image.Image) -> bool:
    return not same(x_screenshot(xenv), before)
