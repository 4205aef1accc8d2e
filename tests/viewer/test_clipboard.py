"""The clipboard directions a Hello allows, in system Chromium behind the stand-in agent.

Off: a paste sends the bare keys and Blocked(paste), never the text, and ClipboardOut is ignored
without touching the clipboard API. To-remote: a paste sends ClipboardIn with the home clipboard's
text, then the keys, so that the desktop pastes it. To-local: ClipboardOut lands on the home
clipboard, through writeText or, where that is refused (the agent's Permissions-Policy), through
the teacher's next Ctrl+C. The page never reads navigator.clipboard.
"""

from __future__ import annotations

import pytest

from agent.viewer_server import SECURITY_HEADERS
from gateway.wire import display as w
from tests.fixtures.viewer import OpenViewer, ViewerPage
from tests.viewer.test_lockdown_events import DISPATCH, assert_clean, keys_of, paste_command

pytestmark = pytest.mark.slow

F = w.HelloFlags
CLIP = ["clipboard-read", "clipboard-write"]
HOME = "家のメモ home-note 42"
SCHOOL = "学校の文書 school-doc 7"
CTRL_L, SHIFT_L, INSERT, V, C = 0xFFE3, 0xFFE1, 0xFF63, 0x76, 0x63
COPIED = "学校のパソコンからコピーしました Copied from the school desktop"
PRESS_COPY = "Ctrl+C でコピーできます Press Ctrl+C to copy from the school desktop"


def without_pings(sent: list[w.Message]) -> list[w.Message]:
    return [m for m in sent if not isinstance(m, w.Ping | w.Ack)]


async def on_home_clipboard(v: ViewerPage, text: str) -> None:
    await v.as_test(f"navigator.clipboard.writeText({text!r})")


async def test_off_paste_sends_only_the_keys_and_a_blocked_report(viewer_page: OpenViewer) -> None:
    v = await viewer_page(permissions=CLIP)
    await on_home_clipboard(v, HOME)
    await v.start_session(flags=F.CLIPBOARD_TO_LOCAL)  # the other direction only
    assert await v.page.evaluate("document.body.dataset.clipboard") == "to-local"
    await v.page.locator("#screen").focus()
    # Ctrl+V: the paste event is refused unread and reported; the keys still go to the desktop,
    # whose own clipboard keeps working.
    await v.page.keyboard.press("Control+v")
    assert without_pings(await v.barrier()) == [
        w.Key(CTRL_L, True), w.Blocked(w.BlockedKind.PASTE), w.Key(V, True), w.Key(V, False),
        w.Key(CTRL_L, False),
    ]  # fmt: skip
    assert "Pasting from this PC is disabled" in (await v.page.text_content("#notice-text") or "")
    await paste_command(v)  # the browser's own paste command (Edit > Paste, a Mac's Cmd+V)
    sent = await v.barrier()
    assert keys_of(sent) == [(V, True), (V, False)]
    # (a report within the second after the last one is folded away by the page's rate limit)
    assert all(m == w.Blocked(w.BlockedKind.PASTE) for m in sent if not isinstance(m, w.Key))
    assert not [m for m in v.agent.received if isinstance(m, w.ClipboardIn)]
    assert all(HOME.encode() not in f for f in v.frames_sent if isinstance(f, bytes))
    assert (await v.probe())["clipboard"] == []
    assert_clean(v)


async def test_to_remote_paste_sends_the_text_before_the_keys(viewer_page: OpenViewer) -> None:
    v = await viewer_page(permissions=CLIP)
    await on_home_clipboard(v, HOME)
    await v.start_session(flags=F.CLIPBOARD_TO_REMOTE)
    assert await v.page.evaluate("document.body.dataset.clipboard") == "to-remote"
    await v.page.locator("#screen").focus()
    await v.page.keyboard.press("Control+v")
    assert without_pings(await v.barrier()) == [
        w.Key(CTRL_L, True), w.ClipboardIn(HOME), w.Key(V, True), w.Key(V, False),
        w.Key(CTRL_L, False),
    ]  # fmt: skip
    await v.page.keyboard.press("Shift+Insert")
    assert without_pings(await v.barrier()) == [
        w.Key(SHIFT_L, True), w.ClipboardIn(HOME), w.Key(INSERT, True), w.Key(INSERT, False),
        w.Key(SHIFT_L, False),
    ]  # fmt: skip
    await paste_command(v)  # the browser's own paste command: the text, then the bare key
    assert without_pings(await v.barrier()) == [w.ClipboardIn(HOME), w.Key(V, True),
                                                w.Key(V, False)]  # fmt: skip
    # Copying stays blocked (to-local is off): Ctrl+C is a key, a copy command is reported.
    await v.page.keyboard.press("Control+c")
    await v.as_test("document.execCommand('copy')")
    assert without_pings(await v.barrier()) == [
        w.Key(CTRL_L, True), w.Key(C, True), w.Key(C, False), w.Key(CTRL_L, False),
        w.Blocked(w.BlockedKind.COPY),
    ]  # fmt: skip
    assert await v.as_test("navigator.clipboard.readText()") == HOME
    # A long text goes up in several WebSocket frames (the agent takes ≤ 64 KiB per frame).
    long = "長い文章 long text\n" * 20_000  # 460 000 bytes of UTF-8
    await on_home_clipboard(v, long)
    await v.page.locator("#screen").focus()
    await v.page.keyboard.press("Control+v")
    assert without_pings(await v.barrier())[1:3] == [w.ClipboardIn(long), w.Key(V, True)]
    assert (await v.probe())["clipboard"] == []  # the text came from the paste event
    assert v.errors == [] and v.agent.other_frames == []


async def test_to_remote_refuses_files_and_view_only_sessions(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session(flags=F.CLIPBOARD_TO_REMOTE)
    await v.page.evaluate(
        """() => {
          const dt = new DataTransfer();
          dt.items.add(new File(["MZ"], "setup.exe", { type: "application/octet-stream" }));
          document.getElementById("screen").dispatchEvent(new ClipboardEvent("paste",
            { bubbles: true, cancelable: true, clipboardData: dt }));
        }"""
    )
    assert without_pings(await v.barrier()) == [w.Blocked(w.BlockedKind.PASTE)]
    assert (
        await v.page.text_content("#notice-text")
        == "文字だけ貼り付けられます Only text can be pasted"
    )

    await v.page.reload()
    await v.start_session(flags=F.CLIPBOARD_TO_REMOTE | F.VIEW_ONLY)
    assert await v.page.evaluate("document.body.dataset.clipboard") == "off"
    r = await v.page.evaluate(DISPATCH, ["paste", "#screen"])
    assert r["prevented"] and not r["reached"]
    assert without_pings(await v.barrier()) == [w.Blocked(w.BlockedKind.PASTE)]
    assert not [m for m in v.agent.received if isinstance(m, w.ClipboardIn)]
    assert_clean(v)


@pytest.mark.parametrize("flags", [0, F.CLIPBOARD_TO_REMOTE])
async def test_clipboard_out_is_ignored_unless_to_local(viewer_page: OpenViewer, flags) -> None:
    v = await viewer_page(permissions=CLIP)
    await on_home_clipboard(v, HOME)
    await v.start_session(flags=flags)
    await v.page.locator("#screen").focus()
    await v.agent.send(w.ClipboardOut(SCHOOL))
    await v.barrier()
    await v.page.keyboard.press("Control+c")  # no text waits for a copy: just keys
    assert keys_of(await v.barrier()) == [(CTRL_L, True), (C, True), (C, False), (CTRL_L, False)]
    assert (await v.probe())["clipboard"] == []  # the clipboard API was never touched
    assert await v.as_test("navigator.clipboard.readText()") == HOME
    assert await v.page.is_hidden("#notice")
    assert_clean(v)


async def test_to_local_clipboard_out_reaches_the_home_clipboard(viewer_page: OpenViewer) -> None:
    v = await viewer_page(permissions=CLIP)
    await on_home_clipboard(v, HOME)
    await v.start_session(flags=F.CLIPBOARD_TO_LOCAL)
    await v.page.locator("#screen").focus()
    await v.agent.send(w.ClipboardOut(SCHOOL))
    await v.page.wait_for_function("() => window.__probe.clipboard.includes('writeText')")
    await v.page.wait_for_selector("#notice:not([hidden])")
    assert await v.page.text_content("#notice-text") == COPIED
    assert await v.as_test("navigator.clipboard.readText()") == SCHOOL
    assert (await v.probe())["clipboard"] == ["writeText"]  # written, never read
    assert without_pings(await v.barrier()) == []
    assert v.errors == [] and v.agent.other_frames == []


async def test_to_local_under_the_agents_permissions_policy_waits_for_ctrl_c(
    viewer_page: OpenViewer,
) -> None:
    policy = {"Permissions-Policy": SECURITY_HEADERS["Permissions-Policy"]}
    v = await viewer_page(permissions=CLIP, headers=policy)
    await v.start_session(flags=F.CLIPBOARD_TO_LOCAL)
    await v.page.locator("#screen").focus()
    await v.agent.send(w.ClipboardOut(SCHOOL))
    await v.page.wait_for_function(
        f"() => document.getElementById('notice-text').textContent === {PRESS_COPY!r}"
    )  # writeText was refused by the policy: the text waits
    await v.page.keyboard.press("Control+c")  # the copy event writes it; the keys still go out
    assert keys_of(await v.barrier()) == [(CTRL_L, True), (C, True), (C, False), (CTRL_L, False)]
    assert await v.page.text_content("#notice-text") == COPIED
    control = await v.context.new_page()  # same origin, no Permissions-Policy: may read
    await control.goto(f"{v.agent.origin}/control/editable.html")
    assert await control.evaluate("navigator.clipboard.readText()") == SCHOOL
    await control.close()
    assert (await v.probe())["clipboard"] == []  # the policy forbids the API: not even tried
    assert v.errors == [] and v.agent.other_frames == []


async def test_blocked_reports_are_limited_to_one_a_second_per_kind(
    viewer_page: OpenViewer,
) -> None:
    v = await viewer_page()
    await v.start_session()
    await v.page.evaluate(
        """() => {
          const s = document.getElementById("screen");
          for (let i = 0; i < 20; i++) {
            s.dispatchEvent(new ClipboardEvent("paste", { bubbles: true, cancelable: true }));
            s.dispatchEvent(new DragEvent("drop", { bubbles: true, cancelable: true }));
          }
          dispatchEvent(new Event("beforeprint"));
          dispatchEvent(new Event("afterprint"));
        }"""
    )
    sent = without_pings(await v.barrier())
    assert sorted(m.kind for m in sent if isinstance(m, w.Blocked)) == [1, 3, 4]
    assert len(sent) == 3
    await v.page.wait_for_timeout(1100)  # the limit's own period, measured by the page
    await v.page.evaluate(DISPATCH, ["paste", "#screen"])
    assert without_pings(await v.barrier()) == [w.Blocked(w.BlockedKind.PASTE)]
    assert_clean(v)
