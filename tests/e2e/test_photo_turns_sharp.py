"""Build to lossless, end to end: a photo on the desktop reaches the viewer as JPEG, and once it
has held still it is re-sent lossless, so the canvas in Chromium ends up equal to the X server's
own pixels, every one of them. Real parts: a gateway (watermark off, so the comparison can be
exact), a SoftHSM2 key, `staffroom agent connect`, Chromium, and a real Xvnc desktop whose root
window ImageMagick paints with a plasma picture (far more colours than a text-like box: the
encoder's photo class). Without the refresh the canvas keeps JPEG's error for ever, which is
what a teacher whose policy says display.quality = "lossy" (metered links) gets."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gateway.display.refine import REFINE_AFTER
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


METERED = '[match]\nusers = ["t.metered"]\n\n[display]\nquality = "lossy"\n'


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("world"), policy_overrides=SESSION,
                       extra_policies={"50-metered.toml": METERED}) as w:
        yield w


def wrong(canvas: Image.Image, desktop: Image.Image) -> int:
    """Pixels that differ at all."""
    return int((np.asarray(canvas) != np.asarray(desktop)).any(axis=2).sum())


def mean_error(canvas: Image.Image, desktop: Image.Image) -> float:
    return float(np.abs(np.asarray(canvas, np.int16) - np.asarray(desktop, np.int16)).mean())


Watch = Callable[[Callable[[], Awaitable[Image.Image]], Image.Image], Awaitable[None]]


async def with_photo(world: World, user: str, tmp_path: Path, watch: Watch) -> None:
    """Connect `user`, paint a plasma picture on the desktop's root window, then
    ``watch(canvas, desktop)``: canvas() reads Chromium's canvas, desktop is the X server's."""
    from playwright.async_api import async_playwright

    world.add_teacher(user)
    agent = Agent(world, user, freshclam_conf(tmp_path, 0.5))
    picture = tmp_path / "plasma.ppm"
    subprocess.run(["convert", "-seed", "7", "-size", "1920x1080", "plasma:", "-depth", "8",
                    str(picture)], check=True, timeout=60)
    try:
        url = await asyncio.to_thread(agent.viewer_url)
        _, xenv = desktop_of(world, user)
        async with async_playwright() as p:
            browser, page = await open_full_hd_viewer(p, url)
            # ImageMagick's display exits 1 after painting the root window; the picture stays.
            shown = subprocess.run(["display", "-window", "root", str(picture)], env=xenv,
                                   timeout=60, capture_output=True)
            assert shown.returncode in (0, 1), shown.stderr
            desktop = x_screenshot(xenv)
            assert len(desktop.getcolors(1 << 22) or []) > 10_000  # photo-like: JPEG first
            try:
                await watch(lambda: canvas_image(page), desktop)
            finally:
                await browser.close()
        assert x_screenshot(xenv).tobytes() == desktop.tobytes(), "the desktop kept changing"
    finally:
        agent.stop()


async def test_a_still_photo_ends_up_pixel_exact_on_the_canvas(world: World, tmp_path: Path
                                                               ) -> None:
    async def watch(canvas: Callable[[], Awaitable[Image.Image]], desktop: Image.Image) -> None:
        seen: list[Image.Image] = []

        async def exact() -> bool:
            seen[:] = [await canvas()]
            return wrong(seen[0], desktop) == 0
        if not await wait_until(exact, timeout=30, step=0.5):
            seen[0].save(tmp_path / "canvas.png")
            desktop.save(tmp_path / "desktop.png")
            raise AssertionError(f"{wrong(seen[0], desktop)} canvas pixels still differ from "
                                 f"the desktop (pictures in {tmp_path})")
    await with_photo(world, "t.photo", tmp_path, watch)


async def test_a_metered_school_keeps_the_jpeg(world: World, tmp_path: Path) -> None:
    """display.quality = "lossy" for this teacher: the picture arrives (close to the desktop,
    JPEG's small error) and then nothing more is sent for it, however long it is still."""
    async def watch(canvas: Callable[[], Awaitable[Image.Image]], desktop: Image.Image) -> None:
        seen: list[Image.Image] = [await canvas()]

        async def arrived() -> bool:  # close (an unpainted canvas is ≈ 100 off) and still
            seen[:] = [await canvas(), seen[0]]
            return mean_error(seen[0], desktop) < 12 and seen[0].tobytes() == seen[1].tobytes()
        assert await wait_until(arrived, timeout=30, step=0.5), mean_error(seen[0], desktop)
        await asyncio.sleep(3 * REFINE_AFTER)  # the refresh would have come by then
        later = await canvas()
        assert wrong(later, desktop) > 100_000
        assert later.tobytes() == seen[0].tobytes(), "something was re-sent: a refresh?"
    await with_photo(world, "t.metered", tmp_path, watch)
