"""The bench's window-drag workloads: an xterm dragged around an ellipse, by xdotool on the
desktop's side (``WindowDrag``) or through the client's page as a teacher drags
(``PageDrag``). Registered with the other workloads in bench.workloads."""

from __future__ import annotations

import asyncio
import math
import subprocess
import time

from playwright.async_api import Page

from bench.desktop import Desktop
from bench.documents import write_document
from bench.drag_input import DragInput, PageInput, canvas_rect


class WindowDrag:
    """Drag an xterm around an ellipse with Alt+button 1 (openbox's move binding), 30 moves/s,
    4 s per drag with a 1 s pause between drags."""

    name = "window-drag"
    FPS = 30

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._t = 0.0

    async def setup(self, desktop: Desktop) -> None:
        doc = write_document(desktop.workdir / "drag.txt", 40)
        self._proc = desktop.launch(
            ["xterm", "-class", "BenchDrag", "-geometry", "100x30+200+150", "+bc", "-e", "sh", "-c",
             f"cat {doc}; exec cat >/dev/null"], self.name)
        wid = await desktop.wait_window("--class", "BenchDrag")
        await desktop.xdo("windowactivate", "--sync", wid)
        self._t = 0.0

    def _point(self, t: float) -> tuple[int, int]:
        return round(700 + 450 * math.cos(t)), round(500 + 250 * math.sin(t))

    async def run(self, desktop: Desktop, duration: float) -> None:
        end = time.monotonic() + duration
        while (left := end - time.monotonic()) > 0:
            n = max(1, min(4 * self.FPS, int(left * self.FPS)))
            x, y = self._point(self._t)
            chain = ["mousemove", str(x), str(y), "keydown", "alt", "mousedown", "1"]
            for _ in range(n):
                self._t += 2 * math.pi / (6 * self.FPS)  # one lap per 6 s of dragging
                x, y = self._point(self._t)
                chain += ["sleep", f"{1 / self.FPS:.4f}", "mousemove", str(x), str(y)]
            await desktop.xdo(*chain, "mouseup", "1", "keyup", "alt")
            await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))

    async def teardown(self, desktop: Desktop) -> None:
        if self._proc is not None:
            desktop.close(self._proc)
            self._proc = None


class PageDrag(WindowDrag):
    """WindowDrag as a teacher does it: Alt and mouse button 1 held and the mouse moved in the
    client's page, which forwards them to the desktop, on the same ellipse at the same pace.

    WindowDrag moves the pointer with xdotool, on the desktop's side. TigerVNC then draws the
    pointer into the framebuffer of every client (VNCSConnectionST::needRenderedCursor: the
    position was not the client's), so each step also re-sends the box under the old and the
    new pointer, over the dragged text: most of window-drag's bytes (issue 11 part AL). Moved
    by the client, the pointer is the client's own cursor and only the window moves."""

    name = "window-drag-page"

    def __init__(self) -> None:
        super().__init__()
        self.page: Page | None = None
        self.client = ""
        self.input: DragInput | None = None

    def attach(self, page: Page, client: str) -> None:
        """The page and client this run drags through (bench.run calls it before run)."""
        self.page, self.client = page, client

    async def run(self, desktop: Desktop, duration: float) -> None:
        if self.page is not None:
            self.input = PageInput(self.page, *await canvas_rect(self.page, self.client))
        into = self.input
        if into is None:
            raise RuntimeError("window-drag-page needs the client's page (bench.run attaches "
                               "it) or an RFB connection (bench.display_cpu record)")
        end = time.monotonic() + duration
        while (left := end - time.monotonic()) > 0:
            n = max(1, min(4 * self.FPS, int(left * self.FPS)))
            await into.move(*self._point(self._t))
            await into.hold(True)
            t0 = time.monotonic()
            for i in range(n):
                self._t += 2 * math.pi / (6 * self.FPS)
                await asyncio.sleep(max(0.0, t0 + (i + 1) / self.FPS - time.monotonic()))
                await into.move(*self._point(self._t))
            await into.hold(False)
            await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
