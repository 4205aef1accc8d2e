"""Build to lossless, end to end: a photo on the desktop reaches the viewer as JPEG, and once it
has held still it is re-sent lossless, so the canvas in Chromium ends up equal to the X server's
own pixels, every one of them. Real parts: a gateway (watermark off, so the comparison can be
exact), a SoftHSM2 key, `staffroom agent connect`, Chromium, and a real Xvnc desktop whose root
window ImageMagick paints with a plasma picture (far more colours than a text-like box: the
encoder's photo class). Without the refresh the canvas keeps JPEG's error for ever."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.fixtures.agent import Agent, freshclam_conf
from tests.fixtures.desktop_view import (
    canvas_image,
    desktop_of,
    open_full_hd_viewer,
    wait_until,
    x_screenshot,
)
from tests.fixtures.gateway import World, running_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# Nothing on the screen but the root window: no cursor blinking, no window manager.
SESSION = ('[match]\nroles = ["teacher"]\n\n[watermark]\nenabled = false\n\n'
           '[workspace]\nsession_command = "sleep 100000"\n')


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("world"), policy_overrides=SESSION) as w:
        yield w


def wrong(canvas: Image.Image, desktop: Image.Image) -> int:
    """Pixels that differ at all."""
    return int((np.asarray(canvas) != np.asarray(desktop)).any(axis=2).sum())


async def test_a_still_photo_ends_up_pixel_exact_on_the_canvas(world: World, tmp_path: Path
                                                               ) -> None:
    from playwright.async_api import async_playwright

    world.add_teacher("t.photo")
    agent = Agent(world, "t.photo", freshclam_conf(tmp_path, 0.5))
    picture = tmp_path / "plasma.ppm"
    subprocess.run(["convert", "-seed", "7", "-size", "1920x1080", "plasma:", "-depth", "8",
                    str(picture)], check=True, timeout=60)
    try:
        url = await asyncio.to_thread(agent.viewer_url)
        _, xenv = desktop_of(world, "t.photo")
        async with async_playwright() as p:
            browser, page = await open_full_hd_viewer(p, url)
            # ImageMagick's display exits 1 after painting the root window; the picture stays.
            shown = subprocess.run(["display", "-window", "root", str(picture)], env=xenv,
                                   timeout=60, capture_output=True)
            assert shown.returncode in (0, 1), shown.stderr
            desktop = x_screenshot(xenv)
            assert len(desktop.getcolors(1 << 22) or []) > 10_000  # photo-like: JPEG first
            seen: list[Image.Image] = []

            async def exact() -> bool:
                seen[:] = [await canvas_image(page)]
                return wrong(seen[0], desktop) == 0
            ok = await wait_until(exact, timeout=30, step=0.5)
            await browser.close()
        assert x_screenshot(xenv).tobytes() == desktop.tobytes(), "the desktop kept changing"
        if not ok:
            seen[0].save(tmp_path / "canvas.png")
            desktop.save(tmp_path / "desktop.png")
        assert ok, (f"{wrong(seen[0], desktop)} canvas pixels still differ from the desktop "
                    f"(pictures in {tmp_path})")
    finally:
        agent.stop()
