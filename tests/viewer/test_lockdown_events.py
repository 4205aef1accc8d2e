"""Lock-down of the viewer page in system Chromium: nothing but keys and pointer events leave it.

Clipboard, drag-and-drop, selection and context-menu events are cancelled and stopped wherever
they are dispatched; with the clipboard off a paste with text on the browser's clipboard sends
the bare keys and a Blocked report, never the text; the page never calls the clipboard API and
talks to no origin but its own. (The clipboard directions a Hello allows: test_clipboard.py.)
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from gateway.wire import display as w
from tests.fixtures.viewer import OpenViewer, ViewerPage
from tests.viewer.stand_in import CSP

pytestmark = pytest.mark.slow

SECRET = "給与明細 secret-4711"
CTRL_L = 0xFFE3

# Dispatches one synthetic event of `type` at `target` and reports what became of it: whether
# it was cancelled, the drag effects it was left with and whether a listener the test put on the
# target itself ever saw it (the page stops these events before they reach anything).
DISPATCH = """
([type, sel]) => {
  const target = sel === "window" ? window : sel === "document" ? document
    : document.querySelector(sel);
  let reached = false;
  const spy = () => { reached = true; };
  target.addEventListener(type, spy);
  const dt = new DataTransfer();
  dt.setData("text/plain", "SECRET");
  dt.items.add(new File(["MZ evil"], "setup.exe", { type: "application/octet-stream" }));
  const init = { bubbles: true, cancelable: true, composed: true };
  const e = ["copy", "cut", "paste"].includes(type)
    ? new ClipboardEvent(type, { ...init, clipboardData: dt })
    : type.match(/^drag|^drop/) ? new DragEvent(type, { ...init, dataTransfer: dt })
    : type === "contextmenu" ? new MouseEvent(type, { ...init, button: 2, clientX: 5, clientY: 5 })
    : new Event(type, init);
  const notCancelled = target.dispatchEvent(e);
  target.removeEventListener(type, spy);
  return { notCancelled, prevented: e.defaultPrevented, reached,
           effectAllowed: dt.effectAllowed, dropEffect: dt.dropEffect };
}
""".replace("SECRET", SECRET)

EVENTS = ["contextmenu", "dragstart", "drag", "dragenter", "dragover", "drop", "copy", "cut",
          "paste", "selectstart"]  # fmt: skip
TARGETS = ["#screen", "body", "#fullscreen", "#info", "document", "window"]


def keys_of(messages: list[w.Message]) -> list[tuple[int, bool]]:
    return [(m.keysym, m.down) for m in messages if isinstance(m, w.Key)]


def assert_clean(v: ViewerPage) -> None:
    assert v.errors == []
    assert v.agent.other_frames == []
    assert all(SECRET.encode() not in f for f in v.frames_sent if isinstance(f, bytes))


async def test_synthetic_events_are_cancelled_and_stopped_everywhere(
    viewer_page: OpenViewer,
) -> None:
    v = await viewer_page()
    await v.start_session()
    assert await v.page.evaluate("document.body.dataset.clipboard") == "off"
    assert await v.page.evaluate("document.getElementById('screen').draggable") is False
    for target in TARGETS:
        for event in EVENTS:
            r = await v.page.evaluate(DISPATCH, [event, target])
            where = f"{event} at {target}"
            assert r["prevented"] and not r["notCancelled"], where
            assert not r["reached"], where  # stopped before any page code sees it
            if event == "dragstart":
                assert r["effectAllowed"] == "none", where
            elif event in ("dragenter", "dragover", "drag"):
                assert r["dropEffect"] == "none", where
    # Nothing but the reports of what was refused left the page (at most one a second per kind).
    sent = await v.barrier()
    assert all(isinstance(m, w.Blocked) for m in sent), sent
    kinds = {m.kind for m in sent if isinstance(m, w.Blocked)}
    assert kinds == {w.BlockedKind.PASTE, w.BlockedKind.COPY, w.BlockedKind.DROP,
                     w.BlockedKind.DRAG}  # fmt: skip
    selected = await v.page.evaluate("getSelection().toString()")
    assert selected == ""
    assert_clean(v)


async def test_real_right_click_and_select_all_stay_on_the_page(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session()
    box = await v.page.locator("#screen").bounding_box()
    assert box is not None
    # A trusted right click: the desktop gets button 3 (mask 4), the browser shows no menu.
    await v.page.mouse.click(box["x"] + 10, box["y"] + 10, button="right")
    sent = await v.barrier()
    assert [m.buttons for m in sent if isinstance(m, w.Pointer)][-2:] == [4, 0]
    probe = await v.probe()
    assert [e for e in probe["events"] if e["type"] == "contextmenu"] == [
        {"type": "contextmenu", "prevented": True}
    ]
    # Triple click and Ctrl+A select nothing of the page (Ctrl+A goes to the desktop).
    await v.page.mouse.click(box["x"] + 10, box["y"] + 10, click_count=3)
    await v.page.locator("#info").click(click_count=3)
    await v.page.keyboard.press("Control+a")
    assert await v.page.evaluate("getSelection().toString()") == ""
    assert keys_of(await v.barrier()) == [(CTRL_L, True), (0x61, True), (0x61, False),
                                          (CTRL_L, False)]  # fmt: skip
    assert_clean(v)


async def paste_command(v: ViewerPage) -> None:
    """The paste editing command (what Edit > Paste or a Mac's Cmd+V does), trusted, via CDP."""
    cdp = await v.context.new_cdp_session(v.page)
    for kind in ("rawKeyDown", "keyUp"):
        await cdp.send("Input.dispatchKeyEvent", {
            "type": kind, "key": "v", "code": "KeyV", "windowsVirtualKeyCode": 0x56,
            "modifiers": 2, "commands": ["paste"] if kind == "rawKeyDown" else []})  # fmt: skip
    await cdp.detach()


async def test_paste_with_text_on_the_clipboard_sends_nothing(viewer_page: OpenViewer) -> None:
    v = await viewer_page(permissions=["clipboard-read", "clipboard-write"])
    await v.as_test(f"navigator.clipboard.writeText({SECRET!r})")
    assert await v.as_test("navigator.clipboard.readText()") == SECRET  # really on the clipboard

    # Control: on a page of the same origin without the lock-down, the command pastes SECRET.
    control = await v.context.new_page()
    await control.goto(f"{v.agent.origin}/control/editable.html")
    await control.locator("#editable").focus()
    await paste_command(ViewerPage(v.agent, v.context, control))
    assert SECRET in (await control.text_content("#editable") or "")
    await control.close()

    await v.page.bring_to_front()
    await v.start_session()
    await v.page.locator("#screen").focus()
    # Ctrl+V, from the canvas and from the fullscreen button: just keys for the remote desktop.
    await v.page.keyboard.press("Control+v")
    await v.page.locator("#fullscreen").focus()
    await v.page.keyboard.press("Control+v")
    ctrl_v = [(CTRL_L, True), (0x76, True), (0x76, False), (CTRL_L, False)]
    first = await v.barrier()
    assert keys_of(first) == ctrl_v * 2

    await paste_command(v)
    await v.page.locator("#screen").focus()
    await paste_command(v)
    await v.as_test("document.execCommand('paste')")
    # A paste event carrying the text, as a browser menu would fire it.
    r = await v.page.evaluate(DISPATCH, ["paste", "#screen"])
    assert r["prevented"] and not r["reached"]

    sent = await v.barrier()
    # Each refused paste is reported for the audit (at most once a second), never its text.
    others = [m for m in first + sent if not isinstance(m, w.Key)]
    assert others and all(m == w.Blocked(w.BlockedKind.PASTE) for m in others)
    assert keys_of(sent) == [(0x76, True), (0x76, False)] * 2  # the bare V keys; no text
    probe = await v.probe()
    pastes = [e for e in probe["events"] if e["type"] == "paste"]
    assert pastes and all(e["prevented"] for e in pastes)
    assert probe["clipboard"] == [] and probe["execCommand"] == []
    assert_clean(v)


async def test_copy_and_cut_keys_go_to_the_desktop_and_the_clipboard_is_untouched(
    viewer_page: OpenViewer,
) -> None:
    v = await viewer_page(permissions=["clipboard-read", "clipboard-write"])
    await v.start_session()
    await v.as_test("navigator.clipboard.writeText('before')")
    await v.page.locator("#screen").focus()
    await v.page.keyboard.press("Control+c")
    await v.page.keyboard.press("Control+x")
    await v.as_test("document.execCommand('copy')")
    assert keys_of(await v.barrier()) == [
        (CTRL_L, True), (0x63, True), (0x63, False), (CTRL_L, False),
        (CTRL_L, True), (0x78, True), (0x78, False), (CTRL_L, False),
    ]  # fmt: skip
    assert await v.as_test("navigator.clipboard.readText()") == "before"
    probe = await v.probe()
    assert all(e["prevented"] for e in probe["events"] if e["type"] in ("copy", "cut"))
    assert probe["clipboard"] == [] and probe["execCommand"] == []
    assert_clean(v)


async def test_page_talks_to_its_own_origin_only(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session()
    # Exercise everything that could fetch: a PNG tile (blob), a cursor (data: URL), a notice,
    # the fullscreen button, a blocked paste, printing, the end screen.
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 128, 0)).save(buf, "PNG")
    cursor = io.BytesIO()
    Image.new("RGBA", (4, 4), (0, 0, 255, 255)).save(cursor, "PNG")
    await v.agent.send(w.Tile(8, 8, 16, 16, w.TileFormat.PNG, buf.getvalue()),
                       w.Cursor(0, 0, 4, 4, cursor.getvalue()),
                       w.Notice(w.NoticeLevel.INFO, 1, "https://evil.example/x.png"))  # fmt: skip
    await v.barrier()
    await v.page.locator("#fullscreen").click()
    await v.page.evaluate(DISPATCH, ["paste", "#screen"])
    await v.page.pdf()
    await v.agent.send(w.End(w.EndCode.NORMAL, "<img src=https://evil.example/y.png>"))
    await v.page.wait_for_selector("#ended:not([hidden])")
    probe = await v.probe()
    origin = v.agent.origin
    ws_origin = origin.replace("http://", "ws://")
    assert v.requests and v.websockets
    assert [u for u in v.requests if not u.startswith(origin + "/")] == []
    assert [u for u in v.websockets if not u.startswith(ws_origin + "/display?")] == []
    assert probe["violations"] == []
    assert_clean(v)


async def test_no_csp_violations_and_the_agent_serves_the_same_policy(
    viewer_page: OpenViewer,
) -> None:
    from agent.viewer_server import CSP as AGENT_CSP

    assert CSP == AGENT_CSP  # the stand-in tests the policy the agent really sends
    v = await viewer_page()
    await v.start_session()
    await v.page.locator("#fullscreen").click()
    await v.agent.send(w.Notice(w.NoticeLevel.WARNING, 1, "idle"))
    await v.barrier()
    probe = await v.probe()
    assert probe["violations"] == []
    assert_clean(v)


async def test_no_other_hello_flag_turns_the_clipboard_on(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    clipboard = w.HelloFlags.CLIPBOARD_TO_REMOTE | w.HelloFlags.CLIPBOARD_TO_LOCAL
    await v.start_session(flags=0xFFFFFFFF & ~w.HelloFlags.VIEW_ONLY & ~clipboard)
    assert await v.page.evaluate("document.body.dataset.clipboard") == "off"
    r = await v.page.evaluate(DISPATCH, ["paste", "#screen"])
    assert r["prevented"] and not r["reached"]
    # The policy table itself, as the module exports it.
    table = await v.page.evaluate(
        """async () => {
          const s = await import("./session.js");
          const dirs = [s.Clipboard.TO_REMOTE, s.Clipboard.TO_LOCAL, "both", "off", "x"];
          const out = {};
          for (const c of ["off", "to-remote", "to-local", "both", "nonsense"]) {
            out[c] = dirs.filter((d) => s.clipboardAllows({ clipboard: c }, d));
          }
          const from = (flags) => s.sessionFromHello({ sessionId: "a", info: "", flags }).clipboard;
          out.fromHello = [from(0xFFFFFFE7), from(8), from(16), from(24), from(9), from(25)];
          out.initial = s.INITIAL_SESSION.clipboard;
          return out;
        }"""
    )
    assert table == {
        "off": [],
        "to-remote": ["to-remote"],
        "to-local": ["to-local"],
        "both": ["to-remote", "to-local"],
        "nonsense": [],
        # unknown bits, to-remote, to-local, both, view-only + to-remote, view-only + both
        "fromHello": ["off", "to-remote", "to-local", "both", "off", "to-local"],
        "initial": "off",
    }
    assert_clean(v)
