"""The viewer's call-centre help bar against a stand-in agent (issue 13): offered only when the
Hello says so; each button sends its Help action and nothing else; the bar follows the gateway's
HelpState, names the operator as text (never HTML) and stays legible; a bad HelpState is a
protocol error."""

from __future__ import annotations

import pytest

from gateway.wire import display as w
from tests.fixtures.viewer import OpenViewer
from tests.viewer.test_notices import assert_legible

pytestmark = pytest.mark.slow

HOSTILE = '窓口 <img src=x onerror="alert(1)"> (help.1)'


async def test_no_help_button_unless_the_gateway_offers_help(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session()
    assert await v.page.is_hidden("#help-ask") and await v.page.is_hidden("#help")
    assert v.errors == []


async def test_the_help_bar_follows_the_gateway_and_sends_the_teachers_choices(
    viewer_page: OpenViewer
) -> None:
    v = await viewer_page()
    await v.start_session(flags=w.HelloFlags.HELP)
    await v.page.wait_for_selector("#help-ask:not([hidden])")
    await v.page.click("#help-ask")
    assert await v.barrier() == [w.Help(w.HelpAction.ASK)]

    await v.agent.send(w.HelpState(w.HelpStatus.ASKED))
    await v.page.wait_for_selector("#help[data-status='1']:not([hidden])")
    assert await v.page.is_hidden("#help-ask") and await v.page.is_hidden("#help-allow")
    assert await v.page.text_content("#help-end") == "取り消す Cancel"

    await v.agent.send(w.HelpState(w.HelpStatus.WATCHING, HOSTILE))
    await v.page.wait_for_selector("#help[data-status='2'] #help-allow:not([hidden])")
    text = await v.page.text_content("#help-text") or ""
    assert text.startswith(HOSTILE) and "view only" in text  # shown as text, never markup
    assert await v.page.locator("#help img").count() == 0
    for size in [(320, 240), (1920, 1080)]:
        await v.page.set_viewport_size({"width": size[0], "height": size[1]})
        await assert_legible(v, "#help-text", "#help", 14)
    await v.page.click("#help-allow")
    assert await v.barrier() == [w.Help(w.HelpAction.ALLOW_CONTROL)]

    await v.agent.send(w.HelpState(w.HelpStatus.CONTROL, "窓口 (help.1)"))
    await v.page.wait_for_selector("#help[data-status='3'] #help-viewonly:not([hidden])")
    assert "controlling your desktop" in (await v.page.text_content("#help-text") or "")
    await assert_legible(v, "#help-text", "#help", 14)
    await v.page.click("#help-viewonly")
    await v.page.click("#help-end")
    assert await v.barrier() == [w.Help(w.HelpAction.VIEW_ONLY), w.Help(w.HelpAction.END)]

    await v.agent.send(w.HelpState(w.HelpStatus.NONE))
    await v.page.wait_for_selector("#help", state="hidden")
    await v.page.wait_for_selector("#help-ask:not([hidden])")
    # The keyboard still drives the desktop, not the help buttons.
    await v.page.keyboard.press("a")
    assert [type(m) for m in await v.barrier()] == [w.Key, w.Key]
    assert v.errors == []


async def test_an_unknown_help_status_is_a_protocol_error(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session(flags=w.HelloFlags.HELP)
    assert v.agent.ws is not None
    await v.agent.ws.send_bytes(b"\x20\x00\x00\x00\x01\x07")
    await v.page.wait_for_selector("#ended:not([hidden])")
    assert "bad help status" in (await v.page.text_content("#ended-text") or "")
