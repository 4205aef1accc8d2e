"""The bench's schedules are deterministic and its watermark-off variant is a valid policy that
switches off the watermark for the bench teachers only."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from bench.clients import (
    StaffroomClient,
    StaffroomLossyClient,
    StaffroomNoWatermarkClient,
    load_client,
)
from bench.workloads import (
    PARAGRAPH,
    SCROLL_RATE,
    TYPING_RATE,
    WORKLOADS,
    paced,
    scroll_lines,
    typed_words,
)
from gateway.policy.load import load_policies
from tests.fixtures.policy import SHIPPED_POLICIES


def test_typing_schedules_hold_exactly_duration_times_rate_characters_of_the_paragraph() -> None:
    words = typed_words(25)
    assert sum(map(len, words)) == 25 * TYPING_RATE
    assert "".join(words).replace(" \n", "\n").rstrip() in PARAGRAPH
    assert all(w.endswith((" ", "\n")) for w in words[:-1])
    # Longer than the paragraph: it starts again, still word by word.
    long = "".join(typed_words(120))
    assert long.startswith(PARAGRAPH.replace("\n", " \n").split(" \n")[0])
    assert len(long) == 120 * TYPING_RATE
    assert typed_words(0) == []


def test_both_typing_workloads_type_the_same_text() -> None:
    assert {"typing", "xterm-typing"} <= set(WORKLOADS)
    assert WORKLOADS["xterm-typing"]().name == "xterm-typing"


def test_the_scroll_stream_is_deterministic_one_screen_line_each() -> None:
    lines = scroll_lines(int(25 * SCROLL_RATE))
    assert lines == scroll_lines(len(lines))
    assert len(lines) == 500 and len(set(lines)) == 500  # numbered: every line differs
    assert all(line.endswith(b"\r\n") and b"\n" not in line[:-1] for line in lines)
    # A maximised 12 pt xterm is about 180 columns: no line wraps into two.
    assert max(len(line) for line in lines) <= 102
    assert lines[0].startswith(b"     1 [WARN] ")


async def test_paced_steps_keep_to_the_clock_even_when_a_step_is_slow() -> None:
    calls: list[float] = []
    t0 = time.monotonic()

    async def step(i: int) -> None:
        calls.append(time.monotonic() - t0)
        if i == 1:
            await asyncio.sleep(0.25)  # late: the next steps catch up, the count stays

    await paced(0.5, 0.1, step)
    elapsed = time.monotonic() - t0
    assert len(calls) == 5
    # Step 3 is due at 0.3 s and runs as soon as step 1 is done (~0.35 s); sleeping an interval
    # after each step would put it at 0.55 s and end after 0.8 s.
    assert calls[3] < 0.5 and calls[4] >= 0.39
    assert 0.5 <= elapsed < 0.75


def test_the_no_watermark_client_switches_it_off_for_its_teachers_only(tmp_path: Path) -> None:
    assert StaffroomClient().policies() == {}
    client = load_client("staffroom-nowm")
    assert isinstance(client, StaffroomNoWatermarkClient) and client.name == "staffroom-nowm"
    client.sessions = 3
    folder = Path(shutil.copytree(SHIPPED_POLICIES, tmp_path / "policies"))
    for name, text in client.policies().items():
        (folder / name).write_text(text)
    policies = load_policies(folder)  # the gateway's own loader: a typo would be refused here
    for user in ("t.bench", "t.bench1", "t.bench2"):
        assert policies.resolve(user, "teacher", "kita-es").policy.watermark.enabled is False
    assert policies.resolve("t.sato", "teacher", "kita-es").policy.watermark.enabled is True
    assert policies.resolve("t.bench3", "teacher", "kita-es").policy.watermark.enabled is True


def test_the_lossy_client_sets_display_quality_for_its_teacher_only(tmp_path: Path) -> None:
    client = load_client("staffroom-lossy")
    assert isinstance(client, StaffroomLossyClient)
    folder = Path(shutil.copytree(SHIPPED_POLICIES, tmp_path / "policies"))
    for name, text in client.policies().items():
        (folder / name).write_text(text)
    policies = load_policies(folder)
    bench = policies.resolve("t.bench", "teacher", "kita-es").policy
    assert bench.display.quality == "lossy" and bench.watermark.enabled is True
    other = policies.resolve("t.sato", "teacher", "kita-es").policy
    assert other.display.quality == "build-to-lossless"


def test_the_page_drag_maps_desktop_pixels_to_the_page_as_the_viewer_maps_them_back() -> None:
    """window-drag-page presses and moves the mouse in the client's page: each desktop pixel
    of its path must land on that pixel again through viewer/canvas.js toDesktop (floor of the
    position scaled by the canvas), on a canvas shown scaled and offset as in the viewer."""
    import math

    from bench.drag_input import CANVAS, page_point
    from bench.drag_workloads import PageDrag

    for rect, (width, height) in [
        ({"left": 0.0, "top": 0.0, "width": 1920.0, "height": 1080.0}, (1920, 1080)),
        ({"left": 12.0, "top": 38.5, "width": 1851.0, "height": 1041.2}, (1920, 1080)),
        ({"left": 3.0, "top": 40.0, "width": 1024.0, "height": 576.0}, (1920, 1080)),
    ]:
        drag = PageDrag()
        for _ in range(200):
            drag._t += 2 * math.pi / (6 * drag.FPS)
            x, y = drag._point(drag._t)
            px, py = page_point(rect, width, height, x, y)
            back = (math.floor((px - rect["left"]) * width / rect["width"]),
                    math.floor((py - rect["top"]) * height / rect["height"]))
            if rect["width"] >= width:  # a canvas shown at least 1:1 hits every pixel
                assert back == (x, y)
            else:  # scaled down: the pixel a page position can reach nearest to it
                assert abs(back[0] - x) <= 1 and abs(back[1] - y) <= 1
    assert WORKLOADS["window-drag-page"]().name == "window-drag-page"
    assert set(CANVAS) == {"novnc", "staffroom"}


async def test_the_recorder_drags_with_alt_and_button_one_held_on_its_rfb_connection() -> None:
    """bench.display_cpu record drives window-drag-page through its own RFB connection: the
    pointer goes to the path's start, Alt and button 1 go down, every move keeps the button
    held, and both come up at the end, as a gateway forwards a viewer's drag."""
    from bench.drag_input import RfbInput
    from bench.drag_workloads import PageDrag

    class Conn:
        def __init__(self) -> None:
            self.sent: list[tuple[object, ...]] = []

        async def pointer(self, x: int, y: int, mask: int) -> None:
            self.sent.append(("pointer", x, y, mask))

        async def key(self, keysym: int, down: bool) -> None:
            self.sent.append(("key", keysym, down))

    conn, drag = Conn(), PageDrag()
    drag.input = RfbInput(conn)
    await drag.run(None, 0.2)  # type: ignore[arg-type]  # the desktop is not used
    sent = conn.sent
    assert sent[0][0] == "pointer" and sent[0][3] == 0
    assert sent[1] == ("key", RfbInput.ALT_L, True)
    assert sent[2] == ("pointer", sent[0][1], sent[0][2], 1)
    moves = sent[3:-2]
    assert len(moves) >= 4 and all(m[0] == "pointer" and m[3] == 1 for m in moves)
    assert len({(m[1], m[2]) for m in moves}) == len(moves)  # it moves at every step
    assert sent[-2] == ("pointer", moves[-1][1], moves[-1][2], 0)
    assert sent[-1] == ("key", RfbInput.ALT_L, False)


async def test_the_page_drag_says_what_it_needs_when_nothing_drives_it() -> None:
    import pytest

    from bench.drag_workloads import PageDrag

    with pytest.raises(RuntimeError, match="needs the client's page"):
        await PageDrag().run(None, 0.1)  # type: ignore[arg-type]
