"""What the bench measures: WebSocket bytes (CDP), canvas updates and key-to-pixel latency (an
init script in the page), and CPU seconds / peak RSS of server-side process trees (/proc).

The page under test is only observed; its numbers are summed and bounded by what we ask for.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Page

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Wraps the 2D-canvas draw calls of every canvas big enough to be a remote screen (the noVNC
# cursor canvas and off-screen back buffers are skipped: only what the user sees counts).
# `frames` counts animation frames in which something was drawn; `lat` collects, for each
# keydown, the time to the first draw after it (keyT is re-armed by the prober before each key),
# and `tail` the part of it after the page's first WebSocket message since the keydown (the
# client's own decode and draw; both clients set `onmessage`, which is wrapped to note it).
INIT_SCRIPT = """
(() => {
  const MIN_AREA = 320 * 240;
  const s = { draws: 0, frames: 0, pending: false, keyT: null, msgT: null, lat: [], tail: [] };
  Object.defineProperty(window, "__bench", { value: s });
  const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    configurable: true,
    get() { return onmessage.get.call(this); },
    set(fn) {
      onmessage.set.call(this, function (ev) {
        if (s.keyT !== null && s.msgT === null) s.msgT = performance.now();
        return fn.call(this, ev);
      });
    },
  });
  const hit = () => {
    const now = performance.now();
    s.draws++;
    if (s.keyT !== null) {
      s.lat.push(now - s.keyT);
      if (s.msgT !== null) s.tail.push(now - s.msgT);
      s.keyT = s.msgT = null;
    }
    if (!s.pending) {
      s.pending = true;
      requestAnimationFrame(() => { s.frames++; s.pending = false; });
    }
  };
  const proto = CanvasRenderingContext2D.prototype;
  for (const name of ["putImageData", "drawImage", "fillRect"]) {
    const orig = proto[name];
    proto[name] = function (...args) {
      const c = this.canvas;
      if (c && c.isConnected && c.width * c.height >= MIN_AREA) hit();
      return orig.apply(this, args);
    };
  }
  window.addEventListener("keydown", () => { s.keyT = performance.now(); s.msgT = null; }, true);
})();
"""


class WebSocketCounter:
    """Sums WebSocket payload bytes a page receives and sends, from CDP Network events."""

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0
        self.frames_received = 0

    async def attach(self, page: Page) -> None:
        """Call before page.goto so the socket's first frames are counted too."""
        cdp = await page.context.new_cdp_session(page)
        cdp.on("Network.webSocketFrameReceived", self._on_received)
        cdp.on("Network.webSocketFrameSent", self._on_sent)
        await cdp.send("Network.enable")

    def _on_received(self, params: dict[str, Any]) -> None:
        self.received += payload_size(params["response"])
        self.frames_received += 1

    def _on_sent(self, params: dict[str, Any]) -> None:
        self.sent += payload_size(params["response"])


def payload_size(frame: dict[str, Any]) -> int:
    """Decoded payload length: text frames (opcode 1) arrive as UTF-8, all others base64-encoded."""
    data: str = frame.get("payloadData", "")
    if frame.get("opcode") != 1:
        # Length of the base64 decoding, computed without decoding megabytes in the bench process.
        return len(data) * 3 // 4 - data[-2:].count("=")
    return len(data.encode())


# ---- /proc --------------------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()  # fields from #3 (state) on; comm may hold spaces


def cpu_seconds(pid: int) -> float:
    """utime + stime + reaped children's cutime + cstime, in seconds."""
    f = _stat_fields(pid)
    return sum(int(x) for x in f[11:15]) / CLK_TCK


def _kib_field(path: str, key: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0


def rss_bytes(pid: int) -> int:
    return _kib_field(f"/proc/{pid}/status", "VmRSS:")


def pss_bytes(pid: int) -> int:
    """Proportional set size: forked children share pages, so summed RSS over-counts a tree."""
    return _kib_field(f"/proc/{pid}/smaps_rollup", "Pss:")


def process_tree(roots: Iterable[int]) -> list[int]:
    """The roots and all their live descendants (websockify forks one child per connection)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(_stat_fields(int(entry.name))[1])
            except (OSError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [r for r in roots if Path(f"/proc/{r}").exists()]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu(pids: Iterable[int]) -> dict[int, float]:
    out: dict[int, float] = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except OSError:  # exited between listing and reading
            continue
    return out


class ProcSampler:
    """CPU seconds used and peak summed RSS of a process tree over one measurement window."""

    def __init__(self, roots: list[int], interval: float = 0.2) -> None:
        self.roots = roots
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self._last: dict[int, float] = {}
        self._start: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._start = tree_cpu(process_tree(self.roots))
        self._last = dict(self._start)
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self._take()
            await asyncio.sleep(self.interval)

    def _take(self) -> None:
        pids = process_tree(self.roots)
        self._last.update(tree_cpu(pids))  # keeps the last value of children that exit
        rss = pss = 0
        for pid in pids:
            try:
                rss += rss_bytes(pid)
                pss += pss_bytes(pid)
            except OSError:
                continue
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)

    async def stop(self) -> float:
        """Stop sampling; returns the CPU seconds the tree used since start()."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._take()
        return sum(v - self._start.get(pid, 0.0) for pid, v in self._last.items())


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat (idle + iowait count as not busy)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # guest time is already inside user/nice
    return total - fields[3] - fields[4], total


class MachineLoad:
    """The machine's load over one measurement window, since other people's work shares the
    cores: the 1-minute load average at start and end, how busy all CPUs were, and the CPU
    seconds of processes outside the bench's own tree (the bench, its browser, desktop, gateway
    and agents all descend from this process), with the busiest few by name."""

    def __init__(self, top: int = 3) -> None:
        self.top = top
        self._t0 = 0.0
        self._load0 = 0.0
        self._ticks0 = (0, 0)
        self._others0: dict[int, float] = {}

    def _others(self) -> dict[int, float]:
        """utime + stime per process (not the reaped children's: those were counted live)."""
        ours = set(process_tree([os.getpid()]))
        out: dict[int, float] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and int(entry.name) not in ours:
                try:
                    f = _stat_fields(int(entry.name))
                except (OSError, ValueError):
                    continue
                out[int(entry.name)] = (int(f[11]) + int(f[12])) / CLK_TCK
        return out

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._load0 = os.getloadavg()[0]
        self._ticks0 = _busy_ticks()
        self._others0 = self._others()

    def stop(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self._t0, 1e-6)
        busy, total = _busy_ticks()
        used = {pid: cpu - self._others0.get(pid, 0.0) for pid, cpu in self._others().items()}
        busiest = sorted(((v, pid) for pid, v in used.items() if v > 0), reverse=True)
        others = sum(v for v in used.values() if v > 0)
        return {
            "loadavg_start": round(self._load0, 2), "loadavg_end": round(os.getloadavg()[0], 2),
            "cpu_busy_pct": round(100 * (busy - self._ticks0[0])
                                  / max(total - self._ticks0[1], 1), 1),
            "others_cpu_s": round(others, 2),
            "others_cpu_pct": round(100 * others / elapsed, 1),
            "others_top": [f"{_comm(pid)} {v:.1f}s" for v, pid in busiest[:self.top]],
        }


# ---- page-side counters -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PageCounters:
    draws: int
    frames: int


async def page_counters(page: Page) -> PageCounters:
    d = await page.evaluate("({draws: window.__bench.draws, frames: window.__bench.frames})")
    return PageCounters(int(d["draws"]), int(d["frames"]))


async def wait_until_quiet(page: Page, quiet: float = 0.5, deadline: float = 10.0) -> bool:
    """Wait until the canvas has not been drawn for `quiet` seconds; False if it never settled."""
    end = time.monotonic() + deadline
    last = await page_counters(page)
    since = time.monotonic()
    while time.monotonic() < end:
        await asyncio.sleep(0.05)
        now = await page_counters(page)
        if now.draws != last.draws:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Latency:
    median_ms: float | None
    p95_ms: float | None
    samples: int
    missed: int
    # Of it, from the page's first WebSocket message after the keydown to the draw: the
    # client's decode and draw (the rest is network, server and desktop).
    tail_median_ms: float | None = None


def summarize_latency(samples: list[float], missed: int, tail: list[float] | None = None
                      ) -> Latency:
    tail_median = round(statistics.median(tail), 2) if tail else None
    if not samples:
        return Latency(None, None, 0, missed, tail_median)
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return Latency(round(statistics.median(ordered), 2), round(p95, 2), len(ordered), missed,
                   tail_median)
