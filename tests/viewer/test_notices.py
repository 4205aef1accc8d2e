"""Idle warnings and the end screen: prominent, legible at any window size, text never HTML.

Legible means: inside the window, on top of everything, at least 14 px (warnings 16 px), WCAG AA
contrast against its own background, no text cut off sideways, and any overflow scrolls.
"""

from __future__ import annotations

import re

import pytest

from gateway.wire import display as w
from tests.fixtures.viewer import OpenViewer, ViewerPage

pytestmark = pytest.mark.slow

SIZES = [(320, 240), (640, 360), (1920, 1080)]
IDLE = "操作がありません。あと 5 分で切断します <b>Idle</b>: 5 minutes left"
# 1024 bytes of UTF-8, the protocol's maximum, with a long unbroken run in the middle.
LONG = ("長い" * 100 + "x" * 200 + " word" * 44 + "…")[:500]
while len(LONG.encode()) > w.MAX_TEXT:
    LONG = LONG[:-1]

MEASURE = """
([textSel, boxSel]) => {
  const text = document.querySelector(textSel), box = document.querySelector(boxSel);
  const r = box.getBoundingClientRect(), cs = getComputedStyle(text), bs = getComputedStyle(box);
  const probeY = Math.min(r.top + 12, r.bottom - 2);
  const top = document.elementFromPoint(r.left + r.width / 2, probeY);
  return { rect: [r.left, r.top, r.right, r.bottom], vw: innerWidth, vh: innerHeight,
    fontSize: parseFloat(cs.fontSize), color: cs.color, background: bs.backgroundColor,
    onTop: box.contains(top), top: top ? `${top.tagName}#${top.id}.${top.className}` : null,
    visible: bs.visibility === "visible" && r.width > 0,
    fitsAcross: box.scrollWidth <= box.clientWidth + 1,
    fitsDown: box.scrollHeight <= box.clientHeight + 1, overflowY: bs.overflowY };
}
"""


def luminance(css: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def contrast(fg: str, bg: str) -> float:
    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


async def assert_legible(v: ViewerPage, text_sel: str, box_sel: str, min_px: float) -> None:
    m = await v.page.evaluate(MEASURE, [text_sel, box_sel])
    left, top, right, bottom = m["rect"]
    where = f"{box_sel} at {m['vw']}x{m['vh']}"
    assert m["visible"] and m["onTop"], (where, m)
    assert left >= 0 and top >= 0 and right <= m["vw"] and bottom <= m["vh"], (where, m)
    assert m["fontSize"] >= min_px, (where, m)
    assert contrast(m["color"], m["background"]) >= 4.5, (where, m)
    assert m["fitsAcross"], (where, m)
    assert m["fitsDown"] or m["overflowY"] in ("auto", "scroll"), (where, m)


async def test_idle_warning_is_prominent_and_clears_on_input(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session()
    await v.agent.send(w.Notice(w.NoticeLevel.WARNING, 1, IDLE))
    await v.page.wait_for_selector("#notice:not([hidden])")
    assert await v.page.text_content("#notice-text") == IDLE  # as text, never as HTML
    assert await v.page.get_attribute("#notice", "data-level") == "1"
    for width, height in SIZES:
        await v.page.set_viewport_size({"width": width, "height": height})
        await assert_legible(v, "#notice-text", "#notice", 16)
    await v.agent.send(w.Notice(w.NoticeLevel.WARNING, 1, LONG))
    await v.page.wait_for_function(
        "() => document.getElementById('notice-text').textContent.length > 100"
    )
    for width, height in SIZES:
        await v.page.set_viewport_size({"width": width, "height": height})
        await assert_legible(v, "#notice-text", "#notice", 16)

    # A blocked paste's own note does not push the warning away.
    await v.page.evaluate(
        "document.getElementById('screen').dispatchEvent("
        "new ClipboardEvent('paste', { bubbles: true, cancelable: true }))"
    )
    assert await v.page.text_content("#notice-text") == LONG
    # Any input answers it: a pointer move...
    box = await v.page.locator("#screen").bounding_box()
    assert box is not None
    await v.page.mouse.move(box["x"] + 5, box["y"] + 5)
    await v.page.wait_for_selector("#notice", state="hidden")
    # ...or a key.
    await v.agent.send(w.Notice(w.NoticeLevel.WARNING, 1, IDLE))
    await v.page.wait_for_selector("#notice:not([hidden])")
    await v.page.keyboard.press("Shift")
    await v.page.wait_for_selector("#notice", state="hidden")
    # An error notice stays until the gateway says otherwise.
    await v.agent.send(w.Notice(w.NoticeLevel.ERROR, 2, "録画が停止しました Recording stopped"))
    await v.page.wait_for_selector("#notice:not([hidden])")
    await v.page.keyboard.press("Shift")
    await v.barrier()
    assert await v.page.is_visible("#notice")
    await assert_legible(v, "#notice-text", "#notice", 14)
    assert v.errors == []


@pytest.mark.parametrize("text", [IDLE, LONG], ids=["short", "max-length"])
async def test_end_text_is_legible_at_any_size(viewer_page: OpenViewer, text: str) -> None:
    v = await viewer_page(viewport=SIZES[0])
    await v.start_session()
    await v.agent.send(w.Notice(w.NoticeLevel.WARNING, 1, IDLE))
    await v.agent.send(w.End(w.EndCode.IDLE_TIMEOUT, text))
    await v.page.wait_for_selector("#ended:not([hidden])")
    assert await v.page.text_content("#ended-text") == text
    assert await v.page.is_hidden("#notice")  # the end replaces any notice
    for width, height in [*SIZES, (200, 150)]:
        await v.page.set_viewport_size({"width": width, "height": height})
        await assert_legible(v, "#ended-text", "#ended .box", 14)
    assert v.errors == []


async def test_fullscreen_locks_the_keyboard_and_unlocks_on_exit(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session()
    await v.page.locator("#fullscreen").click()
    await v.page.wait_for_function("() => document.fullscreenElement === document.documentElement")
    await v.page.wait_for_function("() => window.__probe.keyboard.includes('lock')")
    assert await v.page.evaluate("document.activeElement.id") == "screen"
    assert await v.page.is_hidden("#bar")
    await v.as_test("document.exitFullscreen()")
    await v.page.wait_for_function("() => window.__probe.keyboard.includes('unlock')")
    assert await v.page.is_visible("#bar")
    assert v.errors == []
