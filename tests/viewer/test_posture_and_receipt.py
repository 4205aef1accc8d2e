"""The page's part of issue 13: a security-check (posture) warning is prominent, legible, never
HTML and stays up whatever the teacher types, until the gateway says it is fixed; at the end the
page offers the work receipt its agent handed it, byte for byte."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.wire import display as w
from gateway.wire import receipt
from tests.fixtures.viewer import OpenViewer
from tests.viewer.test_notices import SIZES, assert_legible

pytestmark = pytest.mark.slow

STALE = ("Your antivirus definitions are 9 days old: run freshclam (sudo freshclam) and try "
         "again. Otherwise the session ends in 5 minutes. <b>not markup</b>")


async def test_a_posture_warning_stays_until_fixed(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session()
    await v.agent.send(w.Notice(w.NoticeLevel.WARNING, w.NoticeCode.POSTURE, STALE))
    await v.page.wait_for_selector("#posture:not([hidden])")
    assert await v.page.text_content("#posture-text") == STALE
    for width, height in SIZES:
        await v.page.set_viewport_size({"width": width, "height": height})
        await assert_legible(v, "#posture-text", "#posture", 14)
    # Unlike the idle warning, typing or moving the mouse does not dismiss it.
    await v.page.keyboard.press("Shift")
    box = await v.page.locator("#screen").bounding_box()
    assert box is not None
    await v.page.mouse.move(box["x"] + 5, box["y"] + 5)
    await v.barrier()
    assert await v.page.is_visible("#posture")
    # The gateway's "fixed" (an info with the same code) takes it away and says so.
    await v.agent.send(w.Notice(w.NoticeLevel.INFO, w.NoticeCode.POSTURE,
                                "This computer passes the security check again."))
    await v.page.wait_for_selector("#posture", state="hidden")
    assert "passes the security check" in (await v.page.text_content("#notice-text") or "")
    assert v.errors == []


async def test_the_end_offers_the_receipt_byte_for_byte(viewer_page: OpenViewer) -> None:
    key = Ed25519PrivateKey.generate()
    data = receipt.sign(receipt.WorkReceipt(
        session="s1", user="t.sato", school="kita-es", start="2027-04-01T08:30:00+00:00",
        end="2027-04-01T10:05:00+00:00", active_minutes=80, idle_minutes=15,
        gateway="gw.kita.example"), key)
    v = await viewer_page()
    await v.start_session()
    await v.agent.send(w.Notice(w.NoticeLevel.WARNING, w.NoticeCode.POSTURE, STALE))
    await v.agent.send(w.Receipt(data))
    await v.agent.send(w.End(w.EndCode.POSTURE, "The session ended because this computer "
                             "failed the security check."))
    await v.page.wait_for_selector("#ended:not([hidden])")
    assert await v.page.is_hidden("#posture")  # the end says it all
    link = v.page.locator("#receipt")
    assert await link.is_visible()
    assert (await link.get_attribute("download") or "").endswith(".json")
    async with v.page.expect_download() as download:
        await link.click()
    saved = (await (await download.value).path()).read_bytes()
    assert saved == data and receipt.verify(saved, [key.public_key()])["user"] == "t.sato"
    assert v.errors == []


async def test_no_receipt_no_link(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session()
    await v.agent.send(w.End(w.EndCode.NORMAL, "The session ended."))
    await v.page.wait_for_selector("#ended:not([hidden])")
    assert await v.page.is_hidden("#receipt")
