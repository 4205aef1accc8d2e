"""Call-centre help end to end (issue 13), all real: the gateway, a teacher's SoftHSM2 key and
`staffroom agent connect`, their Xvnc desktop with an xterm, the teacher's viewer and the
helpdesk operator's console in Chromium (the operator's picture is compared with the teacher's).
The operator can join only after the teacher asks; they see the desktop; what they type does not
reach it until the teacher allows control, then it does (a command typed in the xterm runs); the
teacher sees who is helping and ends it; every step is in the audit trail and marked in the
recording."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from gateway.recording.reader import RecordingReader
from tests.console.pixels import canvas_image
from tests.fixtures.agent import Agent
from tests.fixtures.console import add_operator
from tests.fixtures.console_media import Media, signed_in_page
from tests.fixtures.desktop_view import close_enough

pytestmark = pytest.mark.slow

TEACHER = "t.help"  # kita-es, this test's own teacher and session
HELPERS = {"help.board": ("helpdesk", None), "help.minami": ("helpdesk", "minami-es"),
           "help.second": ("helpdesk", None)}
CANVAS = "#helping-canvas"


async def until(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.1)  # polling a condition, under the deadline above


async def click_desktop(page: Page, selector: str, x: int, y: int) -> None:
    """Click desktop pixel (x, y) on a canvas scaled to fit its box."""
    box = await page.locator(selector).bounding_box()
    width, height = await page.eval_on_selector(selector, "c => [c.width, c.height]")
    assert box is not None and width and height
    await page.mouse.click(box["x"] + (x + 0.5) * box["width"] / width,
                           box["y"] + (y + 0.5) * box["height"] / height)


def audit_kinds(media: Media) -> list[tuple[str, str, Any]]:
    rows = media.cw.world.admin.run("audit", "export", "--json", "--user", TEACHER).json()
    return [(r["kind"], r["outcome"], r["details"].get("helper"))  # type: ignore[index]
            for r in rows if r["kind"].startswith("help.")]  # type: ignore[union-attr]


async def test_a_helpdesk_operator_helps_only_as_far_as_the_teacher_allows(
    console_media: Media, chromium: Browser
) -> None:
    media = console_media
    cw = media.cw
    for user, (role, school) in HELPERS.items():
        if user not in cw.operators:
            cw.operators[user] = add_operator(cw.world, user, role, school)
    if TEACHER not in cw.world.teachers:
        cw.world.add_teacher(TEACHER, name="助 けて")
    home = cw.world.gateway.data / "homes" / TEACHER
    agent = Agent(cw.world, TEACHER, cw.freshclam)
    try:
        url = agent.viewer_url()
        teacher = await (await chromium.new_context(viewport={"width": 1280, "height": 720})
                         ).new_page()
        teacher_errors: list[str] = []
        teacher.on("pageerror", lambda e: teacher_errors.append(str(e)))
        await teacher.goto(url)

        async def xterm_up() -> bool:  # the teacher's page shows more than a blank desktop
            image = await canvas_image(teacher, "#screen")
            return image is not None and len(image.getcolors(1 << 20) or []) > 2
        await until(xterm_up, "no xterm on the teacher's desktop", timeout=30)
        await teacher.wait_for_selector("#help-ask:not([hidden])")  # the Hello offers help
        assert await teacher.is_hidden("#help")
        sid = next(s["id"] for s in cw.sessions() if s["user"] == TEACHER)

        # Nobody joins a session whose teacher has not asked.
        me = await cw.sign_in("help.board")
        status, data, _ = await cw.request("GET", f"/api/v1/sessions/{sid}/help",
                                           cookie=me.cookie)
        assert status == 409 and "not asked for help" in data["message"]

        await teacher.click("#help-ask")
        await teacher.wait_for_selector("#help[data-status='1']:not([hidden])")
        assert "waiting for the call centre" in (await teacher.text_content("#help-text") or "")

        # A helpdesk operator of another school sees nobody and cannot join.
        other = await cw.sign_in("help.minami")
        status, data, _ = await cw.request("GET", "/api/v1/help", cookie=other.cookie)
        assert status == 200 and data["help"] == []
        status, _, _ = await cw.request("GET", f"/api/v1/sessions/{sid}/help",
                                        cookie=other.cookie)
        assert status == 403

        c = await signed_in_page(chromium, cw, "help.board", view="help")
        page = c.page
        row = f"#help-table tr[data-session='{sid}'][data-status=asked]"
        await page.wait_for_selector(row)
        assert await page.locator("#nav a[data-view]:not([hidden])").count() == 1
        await page.click(f"{row} button[data-action=join]")
        await page.wait_for_selector("#helping[open] #helping-status[data-state=viewonly]")

        # The teacher sees who is watching; the operator sees the desktop.
        await teacher.wait_for_selector("#help[data-status='2'] #help-allow:not([hidden])")
        said = await teacher.text_content("#help-text") or ""
        assert "help.board" in said and "view only" in said
        # One operator at a time: a second one is refused, saying who is helping.
        second = await cw.sign_in("help.second")
        status, data, _ = await cw.request("GET", "/api/v1/help", cookie=second.cookie)
        (listed,) = [h for h in data["help"] if h["session"] == sid]
        assert (listed["status"], listed["helper"]) == ("watching", "help.board")
        status, data, _ = await cw.request("GET", f"/api/v1/sessions/{sid}/help",
                                           cookie=second.cookie)
        assert status == 409 and "help.board is already helping" in data["message"]

        async def shows_desktop() -> bool:  # the teacher's screen, as the teacher sees it
            image = await canvas_image(page, CANVAS)
            theirs = await canvas_image(teacher, "#screen")
            return (image is not None and theirs is not None and image.size == theirs.size
                    and len(image.getcolors(1 << 20) or []) > 2
                    and close_enough(image, theirs) > 0.99)
        await until(shows_desktop, "the operator's canvas never showed the desktop")
        width, height = await page.eval_on_selector(CANVAS, "c => [c.width, c.height]")
        assert (width, height) == (1920, 1080)

        # View-only: the teacher's pointer rests on the xterm, so leaked keys would land there.
        await click_desktop(teacher, "#screen", 200, 150)
        await click_desktop(page, CANVAS, 220, 160)
        await page.keyboard.type("echo leaked > ~/leaked.txt")
        await page.keyboard.press("Enter")

        async def refused() -> bool:
            return ("help.input", "blocked", "help.board") in audit_kinds(media)
        await until(refused, "the gateway never refused the view-only input")
        await asyncio.sleep(1.0)  # give a leak (there must be none) time to show
        assert not (home / "leaked.txt").exists(), "the view-only operator's input ran"

        # The teacher allows control: now the operator's typing runs in the xterm.
        await teacher.click("#help-allow")
        await page.wait_for_selector("#helping-status[data-state=control]")
        await teacher.wait_for_selector("#help[data-status='3'] #help-viewonly:not([hidden])")
        assert "controlling your desktop" in (await teacher.text_content("#help-text") or "")
        await click_desktop(page, CANVAS, 220, 160)
        await page.keyboard.type("echo helped-by-the-call-centre > ~/helped.txt")
        await page.keyboard.press("Enter")

        async def ran() -> bool:
            f = home / "helped.txt"
            return f.exists() and f.read_text().strip() == "helped-by-the-call-centre"
        await until(ran, "the operator's command never ran in the xterm")

        # The teacher ends it: the operator is disconnected and told.
        await teacher.click("#help-end")
        await page.wait_for_selector("#helping-status[data-state=over]")
        assert await page.text_content("#helping-status") == "The help has ended."
        await teacher.wait_for_selector("#help", state="hidden")
        await teacher.wait_for_selector("#help-ask:not([hidden])")
        status, data, _ = await cw.request("GET", "/api/v1/help", cookie=me.cookie)
        assert all(h["session"] != sid for h in data["help"])

        kinds = [(k, o) for k, o, _ in audit_kinds(media)]
        assert kinds[:1] == [("help.join", "denied")]
        assert kinds.count(("help.join", "denied")) == 2  # before the request; the second one
        for step in [("help.request", "ok"), ("help.join", "ok"), ("help.input", "blocked"),
                     ("help.control", "ok"), ("help.end", "ok")]:
            assert step in kinds, (step, kinds)
        order = [kinds.index(s) for s in [("help.request", "ok"), ("help.join", "ok"),
                                          ("help.control", "ok"), ("help.end", "ok")]]
        assert order == sorted(order)
        denied = cw.world.admin.run("audit", "export", "--json", "--user", TEACHER, "--kind",
                                    "access.denied").json()
        assert any(r["actor"] == "help.minami" and r["details"]["action"] == "help.join"
                   for r in denied)  # type: ignore[union-attr, index]
        assert c.errors == [] and teacher_errors == []
        await c.context.close()
        await teacher.context.close()
        cw.world.admin.run("sessions", "terminate", "--reason", "help test over", "--", sid)
    finally:
        agent.stop()

    # The recording of the session carries the help marks among its frames.
    rows = cw.world.admin.run("recordings", "list", "--json", "--user", TEACHER).json()
    path = Path(next(r["path"] for r in rows if r["session"] == sid))  # type: ignore[union-attr]
    await until(lambda: _sealed(cw, path), "the recording was not sealed", timeout=30)
    with RecordingReader.open(path) as reader:
        marks = [text for _, kind, text in reader.marks() if kind == "help"]
    assert any(m.startswith("help.join help.board") for m in marks), marks
    assert any(m.startswith("help.control") for m in marks) and any(
        m.startswith("help.end") for m in marks), marks


async def _sealed(cw: Any, path: Path) -> bool:
    rows = cw.world.admin.run("recordings", "list", "--json", "--user", TEACHER).json()
    return any(r["path"] == str(path) and r["sealed"] for r in rows)
