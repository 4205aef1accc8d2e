"""The viewer page behind the agent's real loopback server (agent/viewer_server.py).

The other viewer tests use a stand-in; this one checks that the real server, with its real
headers (CSP, Permissions-Policy, cookie, Host check), serves every module the page imports and
that the locked-down page runs there without a CSP violation or error.
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import async_playwright

from agent.viewer_server import ViewerServer
from gateway.wire import display as w
from tests.fixtures.viewer import PROBE
from tests.viewer.stand_in import CHROMIUM_ARGS, VIEWER

pytestmark = pytest.mark.slow


async def test_locked_down_page_runs_under_the_agent_server() -> None:
    up: asyncio.Queue[w.Message] = asyncio.Queue()
    dec = w.DisplayDecoder(w.Direction.TO_GATEWAY)

    async def send_up(data: bytes) -> None:
        dec.feed(data)
        while not isinstance(ev := dec.next_event(), w.Sentinel):
            await up.put(ev)

    async def next_of(kind: type) -> w.Message:
        async with asyncio.timeout(10):
            while not isinstance(m := await up.get(), kind):
                assert isinstance(m, w.Ping | w.Ack), m  # nothing else may leave the page
            return m

    server = ViewerServer(send_up=send_up)
    await server.start()
    responses: list[tuple[str, int]] = []
    errors: list[str] = []
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page()
                await page.add_init_script(PROBE)
                page.on("response", lambda r: responses.append((r.url, r.status)))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                await page.goto(server.url)
                assert await next_of(w.Resume) == w.Resume(w.VERSION, 0)
                await server.push(
                    w.encode(w.Hello(w.VERSION, 64, 48, 0, "s", "info"))
                    + w.encode(w.Fill(0, 0, 64, 48, 1, 2, 3))
                    + w.encode(w.Sync(1, 0))
                )
                assert await next_of(w.Ack) == w.Ack(1)
                await page.locator("#screen").focus()
                await page.evaluate(
                    "document.getElementById('screen').dispatchEvent("
                    "new ClipboardEvent('paste', { bubbles: true, cancelable: true }))"
                )
                # The refused paste is reported for the gateway's audit (not its content).
                assert await next_of(w.Blocked) == w.Blocked(w.BlockedKind.PASTE)
                await page.keyboard.press("Control+p")
                keys = [await next_of(w.Key) for _ in range(4)]
                assert [k.keysym for k in keys] == [0xFFE3, 0x70, 0x70, 0xFFE3]  # type: ignore[attr-defined]
                probe = await page.evaluate(
                    "({ violations: __probe.violations, clipboard: __probe.clipboard,"
                    " pastes: __probe.events.map((e) => e.defaultPrevented) })"
                )
                assert probe == {"violations": [], "clipboard": [], "pastes": [True]}
            finally:
                await browser.close()
    finally:
        await server.stop()
    assert errors == []
    loaded = {url.rsplit("/", 1)[1].split("?")[0]: status for url, status in responses}
    # Every file of viewer/ is part of the page: all of it must load from the real server.
    for module in sorted(p.name for p in VIEWER.glob("*.*") if p.suffix in (".js", ".css")):
        assert loaded.get(module) == 200, (module, loaded)
