"""The bench hands the desktop's pointer to the client's page before a workload (issue 11 part
AS): a teacher scrolls with the pointer her own mouse put there. Real parts: Xvnc, mousepad,
the Staffroom gateway and agent with a SoftHSM2 key (watermark off, so the canvas can equal
the X screen), Chromium."""

from __future__ import annotations

import asyncio
import shutil

import numpy as np
import pytest
from PIL import Image
from playwright.async_api import Page, async_playwright

from bench.clients import load_client
from bench.desktop import AS_SHIPPED, Desktop
from bench.drag_input import hand_pointer_to_page
from bench.measure import wait_until_quiet
from bench.run import CHROMIUM, CHROMIUM_ARGS, open_client_page
from bench.workloads import Scrolling

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("Xvnc", "mousepad", "xdotool", "import", CHROMIUM)),
    reason="needs Xvnc, mousepad, xdotool, ImageMagick and Chromium (.ci/apt-packages.txt)")

SIDE = 40  # the side of the square compared around the pointer, in pixels


async def _pixels_unlike_the_screen(desktop: Desktop, page: Page) -> int:
    """Pixels of the canvas around the pointer that differ from the X server's own screen
    (which never holds the pointer), once a few wheel steps have settled."""
    for _ in range(3):
        await desktop.xdo("click", "5")
        await asyncio.sleep(0.3)
    await asyncio.sleep(1.5)  # Xvnc draws a pointer that is not the client's after a second
    assert await wait_until_quiet(page, quiet=1.0, deadline=15)
    x, y = await desktop.pointer()
    x0, y0 = x - SIDE // 2, y - SIDE // 2
    data = await page.evaluate(
        "([x, y, s]) => Array.from(document.querySelector('#screen').getContext('2d')"
        ".getImageData(x, y, s, s).data)", [x0, y0, SIDE])
    canvas = np.asarray(Image.frombytes("RGBA", (SIDE, SIDE), bytes(data)).convert("RGB"))
    shot = desktop.workdir / "pointer.png"
    await desktop.run("import", "-window", "root", "-crop", f"{SIDE}x{SIDE}+{x0}+{y0}", str(shot))
    screen = np.asarray(Image.open(shot).convert("RGB"))
    return int((np.abs(canvas.astype(int) - screen.astype(int)).max(axis=2) > 8).sum())


async def test_the_page_takes_the_pointer_so_xvnc_stops_drawing_it_into_the_pixels() -> None:
    desktop = Desktop(AS_SHIPPED)
    desktop.start()
    client = load_client("staffroom-nowm")
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            await client.start(desktop)
            context, page, _ = await open_client_page(browser, client)
            workload = Scrolling()
            await workload.setup(desktop)
            try:
                # xdotool put the pointer there: Xvnc draws it into the pixels it sends.
                assert await _pixels_unlike_the_screen(desktop, page) > 20
                await hand_pointer_to_page(page, client.name, await desktop.pointer())
                assert await _pixels_unlike_the_screen(desktop, page) == 0
            finally:
                await workload.teardown(desktop)
                await context.close()
                await client.stop()
                await browser.close()
    finally:
        desktop.stop()
