"""The viewer's one-time link reaches the browser through a private file, not a command line:
the file is 0600 in a 0700 directory, redirects to the loopback URL (checked in Chromium) and is
gone when removed."""

from __future__ import annotations

import stat
from pathlib import Path

from aiohttp import web

from agent.launch_file import remove_launch_file, write_launch_file
from tests.fixtures.agent import viewer_url_from
from tests.fixtures.gateway import free_port


def test_the_file_is_private_and_carries_the_url_escaped(tmp_path: Path) -> None:
    url = 'http://127.0.0.1:5555/?token=a"b<c>&d'
    path = write_launch_file(url, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert "<c>" not in text and '"b<' not in text  # escaped in HTML and in the script
    assert viewer_url_from(path) == url
    remove_launch_file(path)
    assert not path.parent.exists()


async def test_chromium_follows_the_file_to_the_loopback_viewer(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    from tests.fixtures.viewer import CHROMIUM_ARGS

    seen: list[str] = []

    async def index(request: web.Request) -> web.Response:
        seen.append(request.query.get("token", ""))
        return web.Response(text="<title>viewer</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    path = write_launch_file(f"http://127.0.0.1:{port}/?token=one-time-secret", tmp_path)
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(path.as_uri())
            await page.wait_for_url(f"http://127.0.0.1:{port}/**", timeout=10000)
            assert await page.title() == "viewer"
            await browser.close()
    finally:
        await runner.cleanup()
    assert seen and seen[0] == "one-time-secret"
