"""Scripted office workloads, driven on the X display with xdotool on a fixed schedule.

Each workload is set up (apps opened, placed), run for `duration` seconds (the measured window)
and torn down, so every client sees the same desktop state and the same sequence of input.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar, Protocol

from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bench.desktop import Desktop
from bench.documents import MARKS_TITLE, PARAGRAPH, write_document, write_marks_page
from bench.drag_workloads import PageDrag, WindowDrag
from bench.measure import wait_until_quiet
from gateway.workspace import toolkit_defaults

TYPING_RATE = 8.0  # characters per second: a steady human typist
SCROLL_RATE = 20.0  # lines per second printed into the scrolling terminal: a build log
# A maximised xterm as a teacher would use it: an anti-aliased monospace font, a steady cursor.
XTERM_FONT = ["-fa", "Monospace", "-fs", "12"]
PHOTO_COUNT = 6
# GSettings from a key file in the desktop's private HOME: no dconf/dbus daemons left behind,
# and word wrap on, so typing never scrolls the view sideways.
MOUSEPAD_ENV = {"GSETTINGS_BACKEND": "keyfile"}
MOUSEPAD_KEYFILE = "[org/xfce/mousepad/preferences/view]\nword-wrap=true\n"


class Workload(Protocol):
    name: str

    async def setup(self, desktop: Desktop) -> None: ...
    async def run(self, desktop: Desktop, duration: float) -> None: ...
    async def teardown(self, desktop: Desktop) -> None: ...


async def paced(duration: float, interval: float, step: Callable[[int], Awaitable[None]]) -> None:
    """Call step(i) at t0 + i*interval until `duration` is over (no drift from slow steps)."""
    t0 = time.monotonic()
    i = 0
    while (due := t0 + i * interval) < t0 + duration:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await step(i)
        i += 1
    await asyncio.sleep(max(0.0, t0 + duration - time.monotonic()))


class _MousepadWorkload:
    """Shared part of typing and scrolling: one maximised mousepad window on a document."""

    name: ClassVar[str]
    _proc: subprocess.Popen[bytes] | None = None
    _wid = ""

    def document(self, desktop: Desktop) -> Path:
        raise NotImplementedError

    async def setup(self, desktop: Desktop) -> None:
        doc = self.document(desktop)
        keyfile = Path(desktop.env["XDG_CONFIG_HOME"]) / "glib-2.0" / "settings" / "keyfile"
        keyfile.parent.mkdir(parents=True, exist_ok=True)
        keyfile.write_text(MOUSEPAD_KEYFILE)
        self._proc = desktop.launch(["mousepad", "--disable-server", str(doc)], self.name,
                                    MOUSEPAD_ENV)
        self._wid = await desktop.wait_window("--name", doc.name)
        await maximise(desktop, self._wid)

    async def teardown(self, desktop: Desktop) -> None:
        if self._proc is not None:
            desktop.close(self._proc)  # killed, so no "save changes?" dialog
            self._proc = None


class Typing(_MousepadWorkload):
    """Type a paragraph into mousepad at ~8 characters per second, word by word."""

    name = "typing"

    def document(self, desktop: Desktop) -> Path:
        path = desktop.workdir / "typing.txt"
        path.write_text("")
        return path

    async def run(self, desktop: Desktop, duration: float) -> None:
        end = time.monotonic() + duration
        for word in typed_words(duration):
            if time.monotonic() >= end:
                break
            await desktop.xdo("type", "--delay", str(int(1000 / TYPING_RATE)), "--", word)
        await asyncio.sleep(max(0.0, end - time.monotonic()))


class Scrolling(_MousepadWorkload):
    """Scroll a long document: 2.5 s of wheel steps (line-wise), then 3 Page_Downs, repeated."""

    name = "scrolling"

    def document(self, desktop: Desktop) -> Path:
        return write_document(desktop.workdir / "report.txt", 6000)

    async def run(self, desktop: Desktop, duration: float) -> None:
        await wheel_and_pages(desktop, duration)


async def wheel_and_pages(desktop: Desktop, duration: float) -> None:
    """The scrolling workloads' input: 2.5 s of wheel steps, then 3 Page_Downs, repeated."""

    async def step(i: int) -> None:
        phase = i % 40  # 40 steps of 0.125 s: 20 wheel clicks, then 3 pages one second apart
        if phase < 20:
            await desktop.xdo("click", "5")
        elif phase in (24, 32, 39):
            await desktop.xdo("key", "Page_Down")

    await paced(duration, 0.125, step)


class BrowserScrolling:
    """Scroll a long page of the school-affairs kind (a class's marks) in Chromium on the
    desktop, with ``scrolling``'s wheel steps and Page_Downs: teachers spend most of the day in
    the school-affairs suite, a web application. Chromium starts with the school session's
    flags (gateway.workspace.toolkit_defaults: no smooth scrolling) unless the desktop has
    animations on (``--desktop-animations``)."""

    name = "browser-scroll"

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    async def setup(self, desktop: Desktop) -> None:
        page = write_marks_page(desktop.workdir / "marks.html")
        flags = [] if desktop.config.animations else list(toolkit_defaults.CHROMIUM_FLAGS)
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium's sandbox refuses root (the bench's CI)
        self._proc = desktop.launch(
            ["chromium", *flags, f"--user-data-dir={desktop.workdir / 'chromium-profile'}",
             "--no-first-run", "--no-default-browser-check", "--password-store=basic",
             "--disable-background-networking", "--disable-component-update",
             f"--app={page.as_uri()}"], self.name)
        await maximise(desktop, await desktop.wait_window("--name", MARKS_TITLE, deadline=60))
        await asyncio.sleep(2)  # the page laid out and painted, the window settled

    async def run(self, desktop: Desktop, duration: float) -> None:
        await wheel_and_pages(desktop, duration)

    async def teardown(self, desktop: Desktop) -> None:
        if self._proc is not None:
            desktop.close(self._proc)
            self._proc = None


async def maximise(desktop: Desktop, wid: str) -> None:
    """The same place and size for every maximised workload window (openbox leaves a margin)."""
    await desktop.xdo("windowsize", wid, "1900", "1020", "windowmove", wid, "0", "0")
    await desktop.xdo("windowactivate", "--sync", wid)
    await desktop.xdo("mousemove", "960", "540")


def typed_words(duration: float, rate: float = TYPING_RATE) -> list[str]:
    """The schedule of the typing workloads: PARAGRAPH word by word (each with its trailing
    space or newline), cut so that `duration` seconds at `rate` characters per second hold it."""
    words = PARAGRAPH.replace("\n", " \n").split(" ")
    budget, out, i = int(duration * rate), [], 0
    while budget > 0:
        word = words[i % len(words)]
        word = (word if word.endswith("\n") else word + " ")[:budget]
        out.append(word)
        budget -= len(word)
        i += 1
    return out


def scroll_lines(count: int) -> list[bytes]:
    """The deterministic text stream of xterm-scroll: numbered log-like lines of 40-100
    characters (never wider than the maximised terminal, so each is one line on screen)."""
    words = PARAGRAPH.split()
    out = []
    for n in range(count):
        start = (n * 11) % len(words)
        text = " ".join((words * 2)[start:start + 5 + n % 9])
        out.append(f"{n + 1:6d} [{'INFO' if n % 7 else 'WARN'}] {text}"[:100].encode() + b"\r\n")
    return out


class XtermTyping:
    """Type the same paragraph as `typing`, at the same rate, into a maximised xterm running
    `cat >/dev/null` under 40 lines of earlier output (the terminal's echo draws each glyph)."""

    name = "xterm-typing"

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    async def setup(self, desktop: Desktop) -> None:
        doc = write_document(desktop.workdir / "xterm-typing.txt", 40)
        self._proc = desktop.launch(
            ["xterm", "-class", "BenchXtermTyping", "+bc", *XTERM_FONT, "-e", "sh", "-c",
             f"cat {doc}; exec cat >/dev/null"], self.name)
        await maximise(desktop, await desktop.wait_window("--class", "BenchXtermTyping"))

    async def run(self, desktop: Desktop, duration: float) -> None:
        end = time.monotonic() + duration
        for word in typed_words(duration):
            if time.monotonic() >= end:
                break
            await desktop.xdo("type", "--delay", str(int(1000 / TYPING_RATE)), "--", word)
        await asyncio.sleep(max(0.0, end - time.monotonic()))

    async def teardown(self, desktop: Desktop) -> None:
        if self._proc is not None:
            desktop.close(self._proc)
            self._proc = None


class XtermScroll:
    """Terminal output scrolling by X copies: a maximised xterm with jump scroll off (`+j`, so
    every new line is one XCopyArea of the text plus one drawn line) prints a deterministic
    stream written into a FIFO at SCROLL_RATE lines per second."""

    name = "xterm-scroll"

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._fifo = Path()

    async def setup(self, desktop: Desktop) -> None:
        doc = write_document(desktop.workdir / "xterm-scroll.txt", 80)  # a full screen to move
        self._fifo = desktop.workdir / "xterm-scroll.fifo"
        self._fifo.unlink(missing_ok=True)
        os.mkfifo(self._fifo, 0o600)
        # cat blocks opening the FIFO until run() opens it for writing: the screen is still.
        self._proc = desktop.launch(
            ["xterm", "-class", "BenchXtermScroll", "+bc", "+j", "-sl", "1000", *XTERM_FONT,
             "-e", "sh", "-c", f"cat {doc}; exec cat {self._fifo}"], self.name)
        await maximise(desktop, await desktop.wait_window("--class", "BenchXtermScroll"))

    async def run(self, desktop: Desktop, duration: float) -> None:
        lines = scroll_lines(int(duration * SCROLL_RATE) + 1)
        fd = await asyncio.wait_for(asyncio.to_thread(os.open, self._fifo, os.O_WRONLY), 10)
        try:
            async def step(i: int) -> None:
                os.write(fd, lines[i % len(lines)])

            await paced(duration, 1 / SCROLL_RATE, step)
        finally:
            os.close(fd)

    async def teardown(self, desktop: Desktop) -> None:
        if self._proc is not None:
            desktop.close(self._proc)
            self._proc = None
        with contextlib.suppress(OSError):
            self._fifo.unlink()


class Photo:
    """Photo-like full-screen changes: seeded plasma images on the root window, one a second."""

    name = "photo"
    HOLD = 1.0  # seconds each picture stays

    def __init__(self) -> None:
        self._images: list[Path] = []
        self._black = Path()

    async def setup(self, desktop: Desktop) -> None:
        w, h = desktop.config.width, desktop.config.height
        if not self._images:  # generated once per run, deterministic thanks to -seed
            for i in range(PHOTO_COUNT):
                path = desktop.workdir / f"plasma-{i}.ppm"
                await desktop.run("convert", "-seed", str(i + 1), "-size", f"{w}x{h}", "plasma:",
                                  "-depth", "8", str(path), timeout=60)
                self._images.append(path)
            self._black = desktop.workdir / "black.ppm"
            await desktop.run("convert", "-size", f"{w}x{h}", "xc:black", "-depth", "8",
                              str(self._black))

    async def run(self, desktop: Desktop, duration: float) -> None:
        async def step(i: int) -> None:
            await show_on_root(desktop, self._images[i % len(self._images)])

        await paced(duration, self.HOLD, step)

    async def teardown(self, desktop: Desktop) -> None:
        await show_on_root(desktop, self._black)


class PhotoStill(Photo):
    """The same pictures, each held for HOLD seconds: a teacher looking at photos. Measures
    what a still picture costs once it is re-sent lossless (gateway.display.refine), which
    the one-a-second slideshow, changing faster than REFINE_AFTER, never is."""

    name = "photo-still"
    HOLD = 5.0


async def show_on_root(desktop: Desktop, image: Path) -> None:
    # ImageMagick's display exits 1 after painting the root window; the picture is there.
    await desktop.run("display", "-window", "root", str(image), ok=(0, 1))


class Idle:
    """Nothing happens: the cost of keeping a session open."""

    name = "idle"

    async def setup(self, desktop: Desktop) -> None:
        return None

    async def run(self, desktop: Desktop, duration: float) -> None:
        await asyncio.sleep(duration)

    async def teardown(self, desktop: Desktop) -> None:
        return None


WORKLOADS: dict[str, type[Workload]] = {
    w.name: w  # type: ignore[misc]
    for w in (Typing, XtermTyping, Scrolling, XtermScroll, BrowserScrolling, WindowDrag,
              PageDrag, Photo, PhotoStill, Idle)
}


async def probe_key_latency(desktop: Desktop, page: Page, focus: Callable[[Page], Awaitable[None]],
                            keys: int) -> tuple[list[float], int, list[float]]:
    """The quiet typing phase: `keys` letters pressed in the page, one at a time, into an xterm
    with a steady cursor. Returns (keydown-to-first-draw latencies in ms, keys never drawn, and
    per drawn key the ms from the page's first WebSocket message after it to that draw)."""
    proc = desktop.launch(["xterm", "-class", "BenchKeys", "-geometry", "100x20+300+200", "+bc",
                           "-fa", "Monospace", "-fs", "14", "-e", "sh", "-c",
                           "exec cat >/dev/null"], "keys")
    try:
        wid = await desktop.wait_window("--class", "BenchKeys")
        await desktop.xdo("windowactivate", "--sync", wid)
        await focus(page)
        await wait_until_quiet(page, quiet=0.5)
        missed = 0
        for i in range(keys):
            if i and i % 80 == 0:  # new line from the X side, so no keydown reaches the page
                await desktop.xdo("key", "Return")
                await wait_until_quiet(page, quiet=0.3)
            before = await page.evaluate("window.__bench.keyT = null, window.__bench.lat.length")
            await page.keyboard.press("abcdefghijklmnopqrstuvwxyz"[i % 26])
            try:
                await page.wait_for_function(f"window.__bench.lat.length > {before}", timeout=2000)
            except PlaywrightTimeout:
                missed += 1
            await wait_until_quiet(page, quiet=0.15)
        lat, tail = await page.evaluate("[window.__bench.lat, window.__bench.tail]")
        return [float(x) for x in lat], missed, [float(x) for x in tail]
    finally:
        desktop.close(proc)
