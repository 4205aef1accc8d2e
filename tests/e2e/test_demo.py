"""The README's first command, as a newcomer runs it: `.ci/demo.py` brings up the gateway, a
CIO-issued key on a SoftHSM2 token, the teacher's sealed desktop with the school apps and the
connected agent, and its viewer shows that desktop in Chromium. Ctrl+C, pressed twice as an
impatient user does, stops everything: no traceback, and no gateway, desktop or agent is left
running (a second Ctrl+C once cut the stop short and left them all), nor after a Ctrl+C while
the gateway is still being created (which once left that gateway running)."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.fixtures.agent import viewer_url_from
from tests.fixtures.desktop_view import CHROMIUM_ARGS, canvas_image, wait_until
from tests.fixtures.gateway import end_desktops_of
from tests.fixtures.workspace import AS_ROOT, needs_sandbox

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not AS_ROOT, reason="the demo's sealed desktop needs root"),
    needs_sandbox,
]

REPO = Path(__file__).resolve().parents[2]
READY = "Ctrl+C stops everything."


def _xvnc_pids() -> set[int]:
    found = subprocess.run(["pgrep", "-x", "Xvnc"], capture_output=True, text=True).stdout
    return {int(p) for p in found.split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gateway_pids(data: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"gateway --data {data}"], capture_output=True,
                           text=True).stdout
    return [int(p) for p in found.split()]


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def _data_dirs_under(pid: int) -> list[Path]:
    """The --data folder of each gateway the demo started (its own session, so a kill of the
    demo's group misses it): what a failed test must still stop."""
    out = []
    for child in _children(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gateway" in argv and b"--data" in argv:
            out.append(Path(argv[argv.index(b"--data") + 1].decode()))
    return out


class Demo:
    """`.ci/demo.py` in its own process group (a terminal's foreground job), its output read
    by a thread so that every wait has a deadline."""

    def __init__(self) -> None:
        # As CI and a user's pipe run it: no PYTHONUNBUFFERED to hide a buffered line.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        self.proc = subprocess.Popen([sys.executable, str(REPO / ".ci" / "demo.py")], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line)
        self._q.put(None)

    def until(self, text: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            try:
                line = self._q.get(timeout=max(0.1, end - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > end:
                raise AssertionError(f"the demo never printed {text!r}:\n{self.output}")
            self.lines.append(line)

    def value(self, prefix: str) -> str:
        found = next(line for line in self.lines if line.startswith(prefix))
        return found.removeprefix(prefix).strip()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def close(self) -> None:
        """After the process has exited: the reader sees the end, then the pipe is closed."""
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def ctrl_c(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)  # what a terminal does: the whole group


async def test_the_demo_shows_the_desktop_and_two_ctrl_c_stop_everything() -> None:
    before = _xvnc_pids()
    demo = Demo()
    root: Path | None = None
    try:
        demo.until("Staffroom demo in ", timeout=30)
        root = Path(demo.value("Staffroom demo in "))
        demo.until(READY, timeout=200)
        desktops = _xvnc_pids() - before
        assert desktops, "the demo started no desktop"
        gateways = _gateway_pids(root / "data")
        assert gateways, "no gateway runs on the demo's data directory"
        assert "Connected as 佐藤 花子 (t.sato at kita-es)" in demo.output

        url = viewer_url_from(Path(demo.value("Viewer: ")))
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 800})
                await page.goto(url)
                await page.wait_for_function("() => document.body.dataset.state === "
                                             "'connected'", timeout=60_000)

                async def drawn() -> bool:  # the school apps, not a bare background
                    return len((await canvas_image(page)).getcolors(1 << 20) or []) > 16

                assert await wait_until(drawn, timeout=90), "the viewer never showed a desktop"
            finally:
                await browser.close()

        demo.ctrl_c()
        demo.until("Stopping…", timeout=30)
        demo.ctrl_c()  # impatient: again, while it stops
        demo.until("Stopped.", timeout=90)
        assert demo.proc.wait(timeout=30) == 0
        assert "Traceback" not in demo.output, demo.output
        assert not [pid for pid in gateways if _alive(pid)], "the gateway was left running"
        assert not [pid for pid in desktops if _alive(pid)], "the desktop was left running"
        with pytest.raises(ProcessLookupError):  # the agent and anything else of the demo
            os.killpg(demo.proc.pid, 0)
    finally:
        _clean_up(demo, root)


def test_a_ctrl_c_while_the_gateway_is_created_leaves_no_gateway() -> None:
    demo = Demo()
    root: Path | None = None
    try:
        demo.until("Staffroom demo in ", timeout=30)
        root = Path(demo.value("Staffroom demo in "))
        demo.until("creating the gateway", timeout=30)
        end = time.monotonic() + 60
        while not (gateways := _gateway_pids(root / "data")):  # started, not yet set up
            assert time.monotonic() < end, f"no gateway started:\n{demo.output}"
            time.sleep(0.05)
        demo.ctrl_c()
        demo.until("Stopped.", timeout=60)
        assert demo.proc.wait(timeout=30) == 0
        assert "a CIO issues" not in demo.output, "the Ctrl+C came after the gateway was set up"
        assert "Traceback" not in demo.output, demo.output
        assert not [pid for pid in gateways if _alive(pid)], "the gateway was left running"
    finally:
        _clean_up(demo, root)


def _clean_up(demo: Demo, root: Path | None) -> None:
    """After a failure too, nothing of the demo outlives the test."""
    data_dirs = set(_data_dirs_under(demo.proc.pid))
    if root is not None:
        data_dirs.add(root / "data")
    if demo.proc.poll() is None:
        os.killpg(demo.proc.pid, signal.SIGKILL)
        demo.proc.wait(timeout=10)
    demo.close()
    for data in data_dirs:
        for pid in _gateway_pids(data):
            os.kill(pid, signal.SIGKILL)
        end_desktops_of(data)
        shutil.rmtree(data.parent, ignore_errors=True)
