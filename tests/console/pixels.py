"""Reading a page's canvas back as a Pillow image, and waiting for it to show a picture."""

from __future__ import annotations

import asyncio
import base64
import io
import time

from PIL import Image, ImageChops
from playwright.async_api import Page


async def canvas_image(page: Page, selector: str) -> Image.Image | None:
    url = await page.evaluate(
        "s => { const c = document.querySelector(s); "
        "return c.width ? c.toDataURL('image/png') : null; }", selector)
    if url is None:
        return None
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def same(a: Image.Image | None, b: Image.Image) -> bool:
    return a is not None and a.size == b.size and ImageChops.difference(a, b).getbbox() is None


async def wait_for_picture(page: Page, selector: str, want: Image.Image,
                           timeout: float = 10.0) -> None:
    """Until the canvas equals `want` pixel for pixel (or fail, saying how it differs)."""
    end = time.monotonic() + timeout
    got = None
    while time.monotonic() < end:
        got = await canvas_image(page, selector)
        if same(got, want):
            return
        await asyncio.sleep(0.05)  # polling the page's canvas, under the deadline above
    detail = "no picture" if got is None else (
        f"size {got.size} != {want.size}" if got.size != want.size
        else f"differs in {ImageChops.difference(got, want).getbbox()}")
    raise AssertionError(f"{selector} does not show the expected picture: {detail}")
