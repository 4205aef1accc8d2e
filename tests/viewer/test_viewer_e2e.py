"""The real viewer page in system Chromium: frames in, pixels compared; keys and clicks out."""

from __future__ import annotations

import base64
import io

import pytest
from aiohttp import web
from PIL import Image
from playwright.async_api import async_playwright

from gateway.display.encoder import EncodeSettings
from gateway.display.framebuffer import Framebuffer
from gateway.display.pipeline import DisplayPipeline, SessionInfo
from gateway.display.watermark import Watermark
from gateway.wire import display as w
from tests.display.canvas_model import diff_pixels, expected
from tests.viewer.stand_in import CHROMIUM_ARGS, TOKEN, FakeAgent

T0 = 1_700_000_000.0

pytestmark = pytest.mark.slow


async def canvas_image(page) -> Image.Image:
    url = await page.evaluate("document.getElementById('screen').toDataURL('image/png')")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def desktop_pattern(fb: Framebuffer) -> None:
    fb.fill(0, 0, fb.width, fb.height, b"\xf0\xf0\xf0\x00")
    for y in range(8, fb.height, 14):
        fb.fill(10, y, 200 + (y * 7) % 350, 3, b"\x20\x10\x00\x00")
    fb.blit(400, 200, 64, 64, b"".join(bytes((x * 4 % 256, y * 4 % 256, (x ^ y) % 256, 0))
                                       for y in range(64) for x in range(64)))  # fmt: skip


async def send_frame(agent: FakeAgent, pipeline: DisplayPipeline, now: float) -> int:
    data = pipeline.produce_frame(now)
    assert data is not None and agent.ws is not None
    await agent.ws.send_bytes(data)
    ack = await agent.expect(w.Ack)
    pipeline.receive(ack, now)
    return ack.frame_id


async def test_viewer_renders_frames_exactly_and_sends_input() -> None:
    agent = FakeAgent()
    runner = web.AppRunner(agent.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    agent.origin = f"http://127.0.0.1:{port}"
    errors: list[str] = []
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium",
                                               args=CHROMIUM_ARGS)  # fmt: skip
            try:
                page = await browser.new_page(viewport={"width": 900, "height": 600})
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                await page.goto(f"{agent.origin}/index.html?token={TOKEN}")
                # The exact-pixel checks below run through the fast path (canvas.js decodes
                # image tiles with WebCodecs' ImageDecoder on the agent's secure 127.0.0.1 page).
                assert await page.evaluate("typeof ImageDecoder") == "function"
                await run_session(agent, page)
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
    assert errors == []


async def run_session(agent: FakeAgent, page) -> None:
    fb = Framebuffer(640, 400)
    desktop_pattern(fb)
    wm = Watermark("{user_id}\n{time}", {"user_id": "t-0042 山田"}, spacing=(220, 120),
                   opacity=0.4)  # fmt: skip
    pipeline = DisplayPipeline(fb, watermark=wm, settings=EncodeSettings(lossy=False),
                               session=SessionInfo("sess-9", "東小学校 <b>x</b>"))  # fmt: skip
    resume = await agent.expect(w.Resume)
    assert resume == w.Resume(w.VERSION, 0)
    pipeline.receive(resume, T0)
    assert await send_frame(agent, pipeline, T0) == 1
    want = expected(fb, pipeline._layer, pipeline._drift)
    assert diff_pixels(await canvas_image(page), want) == 0
    assert await page.text_content("#info") == "東小学校 <b>x</b>"

    # Damage and copies interleaved, including an overlapping scroll.
    fb.copy(0, 14, 0, 0, 640, 386)
    fb.fill(0, 386, 640, 14, b"\xff\xff\xff\x00")
    fb.fill(300, 20, 80, 40, b"\x00\x00\xc0\x00")
    fb.copy(300, 20, 320, 30, 80, 40)
    fb.set_cursor(0, 0, 4, 4, b"\x00\x00\xff\x00" * 16, b"\xf0" * 4)
    assert await send_frame(agent, pipeline, T0 + 1) == 2
    want = expected(fb, pipeline._layer, pipeline._drift)
    assert diff_pixels(await canvas_image(page), want) == 0
    assert "data:image/png" in await page.evaluate(
        'getComputedStyle(document.getElementById("screen")).cursor'
    )

    await check_pointer(agent, page)
    await check_keys(agent, page)

    await agent.expect(w.Ping)  # sent every 2 s; answered by expect()
    await page.wait_for_function(
        "() => document.getElementById('latency').textContent.endsWith('ms')"
    )

    assert agent.ws is not None
    await agent.ws.send_bytes(w.encode(w.End(w.EndCode.IDLE_TIMEOUT, "<i>idle</i> 30 分")))
    await page.wait_for_selector("#ended:not([hidden])")
    assert await page.text_content("#ended-text") == "<i>idle</i> 30 分"
    assert await page.get_attribute("body", "data-state") == "ended"


async def check_pointer(agent: FakeAgent, page) -> None:
    box = await page.evaluate(
        "(() => { const r = document.getElementById('screen').getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height]; })()"
    )
    left, top, width, height = box
    assert width != 640  # the canvas is really scaled to the window
    assert abs(width / height - 640 / 400) < 0.01  # keeping the aspect ratio
    x, y = 100, 50
    await page.mouse.click(left + (x + 0.5) * width / 640, top + (y + 0.5) * height / 400)
    moves = []
    while True:
        m = await agent.expect(w.Pointer)
        moves.append(m)
        if m.buttons == 1:
            break
    assert (m.x, m.y) == (x, y)
    assert await agent.expect(w.Pointer) == w.Pointer(x, y, 0)
    await page.mouse.wheel(0, 120)  # two wheel-down clicks of 50 px
    for _ in range(2):
        assert await agent.expect(w.Pointer) == w.Pointer(x, y, 1 << 4)
        assert await agent.expect(w.Pointer) == w.Pointer(x, y, 0)


async def check_keys(agent: FakeAgent, page) -> None:
    await page.keyboard.press("a")
    assert await agent.expect(w.Key) == w.Key(0x61, True)
    assert await agent.expect(w.Key) == w.Key(0x61, False)
    await page.keyboard.press("Shift+Enter")
    assert [await agent.expect(w.Key) for _ in range(4)] == [
        w.Key(0xFFE1, True),
        w.Key(0xFF0D, True),
        w.Key(0xFF0D, False),
        w.Key(0xFFE1, False),
    ]
    # Japanese keys are not in Playwright's US layout: dispatch them as trusted CDP key events.
    cdp = await page.context.new_cdp_session(page)
    for key, code, vk, keysym in [("Convert", "Convert", 0x1C, 0xFF23),
                                  ("NonConvert", "NonConvert", 0x1D, 0xFF22),
                                  ("KanaMode", "KanaMode", 0x15, 0xFF27),
                                  ("Zenkaku", "Backquote", 0xF4, 0xFF2A)]:  # fmt: skip
        for kind in ("rawKeyDown", "keyUp"):
            await cdp.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code,
                                                      "windowsVirtualKeyCode": vk})  # fmt: skip
        assert await agent.expect(w.Key) == w.Key(keysym, True)
        assert await agent.expect(w.Key) == w.Key(keysym, False)
    # A key the local IME swallowed ("Process") goes out as its physical key; a character
    # outside ASCII goes out as its keysym.
    for event, keysym in [({"key": "Process", "code": "KeyK", "windowsVirtualKeyCode": 229}, 0x6B),
                          ({"key": "é", "code": "Quote", "text": "é"}, 0xE9),
                          ({"key": "あ", "code": "Digit3", "text": "あ"}, 0x01003042)]:  # fmt: skip
        await cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", **event})
        await cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", **event})
        assert await agent.expect(w.Key) == w.Key(keysym, True)
        assert await agent.expect(w.Key) == w.Key(keysym, False)


async def test_viewer_stops_on_a_hostile_stream_without_reconnecting() -> None:
    agent = FakeAgent()
    runner = web.AppRunner(agent.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    agent.origin = f"http://127.0.0.1:{port}"
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page()
                await page.goto(f"{agent.origin}/index.html?token={TOKEN}")
                await agent.expect(w.Resume)
                assert agent.ws is not None
                # A tile header announcing 2 GiB: refused from the header, nothing allocated.
                await agent.ws.send_bytes(b"\x03\x7f\xff\xff\xff")
                await page.wait_for_selector("#ended:not([hidden])")
                assert "Protocol error" in (await page.text_content("#ended-text") or "")
                assert await page.get_attribute("body", "data-state") == "ended"
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
