"""How many updates Xvnc itself offers per workload, by what the client asks for (issue 11).

    python -m bench.desktop_rate [--duration 10] [--workloads scrolling xterm-scroll ...]
                                 [--frame-rate 240] [--out bench/results/desktop-rate-TIME.json]

The bench's "updates per second" counts animation frames in which the page drew. noVNC asks
Xvnc for Tight with JPEG (quality level 6), and TigerVNC follows every lossy update with
lossless refreshes of the same pixels once the link is idle, so part of what noVNC draws is the
same screen made sharp, not a new one. This starts the bench desktop and, per workload, lets
one RFB client at a time ask for updates as fast as they come (a request right after each
update) with three sets of encodings: CopyRect + Raw (what the gateway asks for), Tight without
JPEG, and Tight with JPEG as noVNC asks. The first two count the distinct states the desktop
offers a lossless client; the third shows what JPEG adds. No browser, agent or gateway: the
desktop's own pace. Nothing here is attacker-facing (the bench's own desktop).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.desktop import Desktop, DesktopConfig
from bench.workloads import WORKLOADS
from gateway.display.framebuffer import Framebuffer
from gateway.rfb.connection import open_rfb
from gateway.rfb.encodings import Encoding, compress_level, quality_level
from gateway.rfb.events import UpdateDone

PSEUDO = (Encoding.DESKTOP_SIZE, Encoding.LAST_RECT)
CLIENTS: dict[str, tuple[int, ...]] = {
    "raw (the gateway's)": (Encoding.COPYRECT, Encoding.RAW, *PSEUDO),
    "tight, no JPEG": (Encoding.COPYRECT, Encoding.TIGHT, compress_level(2), *PSEUDO),
    "tight + JPEG q6 (noVNC's)": (Encoding.COPYRECT, Encoding.TIGHT, compress_level(2),
                                  quality_level(6), *PSEUDO),
}
DEFAULT_WORKLOADS = ("xterm-typing", "scrolling", "xterm-scroll", "window-drag", "photo")
RESULTS = Path(__file__).resolve().parent / "results"


async def count_updates(desktop: Desktop, encodings: tuple[int, ...], workload: object,
                        duration: float) -> dict[str, float]:
    """Run ``workload`` once while one client asks for every update; its updates per second,
    MB received and the median gap between updates."""
    received = [0]
    conn = await open_rfb("127.0.0.1", desktop.rfb_port, desktop.password, Framebuffer(),
                          encodings=encodings,
                          on_receive=lambda d: received.__setitem__(0, received[0] + len(d)))
    times: list[float] = []
    counting = False

    async def pump() -> None:
        await conn.request_update(False)
        async for event in conn.events():
            if isinstance(event, UpdateDone):
                if counting:
                    times.append(time.monotonic())
                await conn.request_update(True)

    task = asyncio.create_task(pump())
    try:
        await asyncio.sleep(1.0)  # the first, whole-screen update is not the workload's
        counting, start, before = True, time.monotonic(), received[0]
        await workload.run(desktop, duration)  # type: ignore[attr-defined]
        elapsed, counting = time.monotonic() - start, False
        nbytes = received[0] - before
    finally:
        task.cancel()
        await conn.close()
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    return {"updates_per_s": round(len(times) / elapsed, 2), "mb": round(nbytes / 1e6, 2),
            "gap_median_ms": round(statistics.median(gaps), 1) if gaps else None}


async def measure(workloads: list[str], duration: float, frame_rate: int | None = None
                  ) -> dict[str, dict[str, dict[str, float]]]:
    desktop = Desktop(DesktopConfig(frame_rate=frame_rate))
    desktop.start()
    out: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for name in workloads:
            out[name] = {}
            for client, encodings in CLIENTS.items():  # each from the workload's start
                workload = WORKLOADS[name]()
                await workload.setup(desktop)
                await asyncio.sleep(1.0)
                try:
                    out[name][client] = await count_updates(desktop, encodings, workload,
                                                            duration)
                finally:
                    await workload.teardown(desktop)
                print(f"{name:13} {client:27} {out[name][client]}", flush=True)
    finally:
        desktop.stop()
    return out


def table(result: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| workload | client asks for | updates/s | MB | median gap ms |",
             "|---|---|---:|---:|---:|"]
    for name, rows in result.items():
        for client, r in rows.items():
            lines.append(f"| {name} | {client} | {r['updates_per_s']:.1f} | {r['mb']:.2f} | "
                         f"{r['gap_median_ms'] if r['gap_median_ms'] is not None else '–'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.desktop_rate",
                                description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per workload and client")
    p.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=DEFAULT_WORKLOADS)
    p.add_argument("--frame-rate", type=int, help="Xvnc -FrameRate (default TigerVNC's 60; the "
                   "gateway starts teachers' desktops at 240)")
    p.add_argument("--out", type=Path, help="JSON path (default bench/results/desktop-rate-TIME"
                   ".json); .md next to it")
    args = p.parse_args(argv)
    result = asyncio.run(measure(list(args.workloads), args.duration, args.frame_rate))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    out = args.out or RESULTS / f"desktop-rate-{stamp}.json"
    out.write_text(json.dumps({"duration": args.duration, "xvnc_frame_rate": args.frame_rate or 60,
                               "result": result}, indent=2) + "\n")
    out.with_suffix(".md").write_text(table(result) + "\n")
    print(table(result))
    print(f"\nwrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
