"""Printing the viewer page gives blank paper; Ctrl+P is a key for the remote desktop.

`page.pdf()` is Chromium's print path (it fires beforeprint/afterprint like the print dialog);
the PDF is rasterised with poppler's pdftoppm and every pixel must be white. The second line of
defence (the beforeprint handler blanking the canvas) is tested with print CSS switched off.
"""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from gateway.wire import display as w
from tests.fixtures.viewer import OpenViewer, ViewerPage

pytestmark = pytest.mark.slow

MAGENTA = (255, 0, 255)  # the desktop's colour: appears nowhere in the page's own UI
GREEN = (0, 160, 0)


async def rasterise(pdf: bytes, tmp_path: Path) -> list[Image.Image]:
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "pdftoppm missing: apt-get install poppler-utils"
    (tmp_path / "page.pdf").write_bytes(pdf)
    proc = await asyncio.create_subprocess_exec(
        pdftoppm,
        "-r",
        "48",
        "-png",
        str(tmp_path / "page.pdf"),
        str(tmp_path / "out"),
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err
    return [Image.open(p).convert("RGB") for p in sorted(tmp_path.glob("out*.png"))]


def near(px: tuple[int, int, int], rgb: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px, rgb, strict=True))


def count_near(img: Image.Image, rgb: tuple[int, int, int]) -> int:
    return sum(n for n, px in img.getcolors(1 << 24) or [] if near(px, rgb))


async def canvas_image(v: ViewerPage) -> Image.Image:
    url = await v.page.evaluate("document.getElementById('screen').toDataURL('image/png')")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


async def test_printed_page_is_blank(viewer_page: OpenViewer, tmp_path: Path) -> None:
    v = await viewer_page()
    await v.start_session(rgb=MAGENTA)
    await v.agent.send(w.Notice(w.NoticeLevel.WARNING, 1, "あと 5 分で切断 Idle: 5 min left"))
    await v.page.wait_for_selector("#notice:not([hidden])")
    # Control: on screen the desktop and the notice are there.
    shot = Image.open(io.BytesIO(await v.page.screenshot())).convert("RGB")
    assert count_near(shot, MAGENTA) > 10_000

    pages = await rasterise(await v.page.pdf(), tmp_path)
    assert len(pages) == 1
    assert pages[0].getextrema() == ((255, 255), (255, 255), (255, 255))  # all white
    probe = await v.probe()
    assert probe["print"] == ["beforeprint", "afterprint"]

    # Afterwards the desktop is back and frames flow again.
    assert (await canvas_image(v)).getcolors() == [(320 * 200, MAGENTA)]
    await v.agent.send(w.Fill(0, 0, 10, 10, *GREEN))
    await v.barrier()
    assert (await canvas_image(v)).getpixel((5, 5)) == GREEN
    assert v.errors == []


async def test_canvas_is_blanked_for_print_even_without_print_css(
    viewer_page: OpenViewer, tmp_path: Path
) -> None:
    v = await viewer_page()
    await v.start_session(rgb=MAGENTA)
    # As if a user style sheet or a browser bug defeated @media print: print with screen CSS.
    await v.page.emulate_media(media="screen")
    (page,) = await rasterise(await v.page.pdf(), tmp_path)
    assert count_near(page, MAGENTA) == 0
    assert page.getextrema() != ((255, 255), (255, 255), (255, 255))  # the bar did print
    await v.page.emulate_media(media=None)


async def test_frames_wait_while_printing_and_resume_after(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session(rgb=MAGENTA)
    await v.page.evaluate("dispatchEvent(new Event('beforeprint'))")
    assert await v.agent.expect(w.Blocked) == w.Blocked(w.BlockedKind.PRINT)  # for the audit
    blank = await canvas_image(v)
    assert blank.getcolors() == [(320 * 200, (255, 255, 255))]
    visibility = "getComputedStyle(document.getElementById('screen')).visibility"
    assert await v.page.evaluate(visibility) == "hidden"

    # A frame arriving while printing is not drawn (and so not acknowledged) until afterprint.
    await v.agent.send(w.Fill(0, 0, 10, 10, *GREEN), w.Sync(100, 0))
    await v.agent.expect(w.Ping)  # ~2 s of page life: the Ack would have come by now
    assert w.Ack(100) not in v.agent.received
    assert (await canvas_image(v)).getcolors() == [(320 * 200, (255, 255, 255))]

    await v.page.evaluate("dispatchEvent(new Event('afterprint'))")
    assert await v.agent.expect(w.Ack) == w.Ack(100)
    restored = await canvas_image(v)
    assert restored.getpixel((5, 5)) == GREEN
    assert restored.getpixel((100, 100)) == MAGENTA
    assert count_near(restored, MAGENTA) == 320 * 200 - 100
    assert v.errors == []


async def test_ctrl_p_goes_to_the_desktop_not_the_printer(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session()
    await v.page.locator("#screen").focus()
    await v.page.keyboard.press("Control+p")
    await v.page.locator("#fullscreen").focus()  # also when the page's own button has focus
    await v.page.keyboard.press("Control+p")
    await v.page.keyboard.press("Control+s")
    sent = await v.barrier()
    ctrl = 0xFFE3
    assert [(m.keysym, m.down) for m in sent if isinstance(m, w.Key)] == [
        (ctrl, True), (0x70, True), (0x70, False), (ctrl, False),
    ] * 2 + [(ctrl, True), (0x73, True), (0x73, False), (ctrl, False)]  # fmt: skip
    assert (await v.probe())["print"] == []
    assert v.errors == []
