"""Ad-hoc: bench.run with two xterm workloads added (11a adds the real ones)."""
from __future__ import annotations
import asyncio, subprocess, sys
from bench import workloads as W
from bench.desktop import Desktop

class XtermTyping:
    name = "xterm-typing"
    def __init__(self): self._proc = None
    async def setup(self, desktop: Desktop) -> None:
        self._proc = desktop.launch(["xterm", "-class", "BenchXT", "-geometry", "100x30+200+150", "+bc",
                                     "-e", "sh", "-c", "exec cat >/dev/null"], self.name)
        wid = await desktop.wait_window("--class", "BenchXT")
        await desktop.xdo("windowactivate", "--sync", wid)
    async def run(self, desktop: Desktop, duration: float) -> None:
        words = W.PARAGRAPH.split()
        async def step(i: int) -> None:
            w = words[i % len(words)] + " "
            await desktop.xdo("type", "--delay", "125", w)
        await W.paced(duration, 0.125 * 8, step)
    async def teardown(self, desktop: Desktop) -> None:
        if self._proc is not None: desktop.close(self._proc); self._proc = None

class XtermScroll:
    name = "xterm-scroll"
    def __init__(self): self._proc = None
    async def setup(self, desktop: Desktop) -> None:
        self._proc = desktop.launch(["xterm", "-class", "BenchXS", "-geometry", "100x30+200+150", "+bc",
            "-e", "sh", "-c", "read x; seq 1 100000 | while read l; do echo \"$l lorem ipsum dolor sit amet\"; sleep 0.01; done"], self.name)
        wid = await desktop.wait_window("--class", "BenchXS")
        await desktop.xdo("windowactivate", "--sync", wid)
    async def run(self, desktop: Desktop, duration: float) -> None:
        await desktop.xdo("key", "Return")
        await asyncio.sleep(duration)
    async def teardown(self, desktop: Desktop) -> None:
        if self._proc is not None: desktop.close(self._proc); self._proc = None

W.WORKLOADS["xterm-typing"] = XtermTyping
W.WORKLOADS["xterm-scroll"] = XtermScroll
from bench import run
import json, re
from pathlib import Path
from bench import clients as C
_orig_connect = C.StaffroomClient._connect
async def _connect(self, *a, **k):
    got = await _orig_connect(self, *a, **k)
    if got.startswith("/"):
        m = re.search(r"window\.location\.replace\((\"[^\n]*?\")\);", Path(got).read_text())
        got = json.loads(m.group(1))
    return got
C.StaffroomClient._connect = _connect
if __name__ == "__main__":
    args = run.parse_args(sys.argv[1:])
    asyncio.run(run.main(args))
