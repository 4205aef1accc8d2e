"""The bench's RFB recording: its file format, and `record` (``bench.display_cpu record``).

A recording is MAGIC, then records ``| t f64 (s since start) | kind u8 | length u32 | data |``:
BYTES (what Xvnc sent one RFB client, as it arrived) or MARK (a workload starts: its name; ends:
empty). ``record`` starts the bench desktop (bench.desktop: Xvnc 1920x1080 + openbox), runs the
workloads one after the other and asks for ZRLE (a compact file), running the real pipeline and
encoder between updates so Xvnc's updates arrive at the pace a gateway asks for them.

Nothing here is attacker-facing: the recording is the bench's own file.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

from gateway.display.framebuffer import Framebuffer
from gateway.display.pipeline import DisplayPipeline, encode_frame
from gateway.display.watermark import Watermark
from gateway.rfb.encodings import Encoding
from gateway.rfb.events import UpdateDone
from gateway.wire import display as wire

MAGIC = b"STAFFROOM-RFBREC-1\n"
_REC = struct.Struct(">dBI")  # | t f64 (s since start) | kind u8 | length u32 | data |
BYTES, MARK = 1, 2
RECORD_ENCODINGS = (Encoding.ZRLE, Encoding.COPYRECT, Encoding.DESKTOP_SIZE, Encoding.LAST_RECT,
                    Encoding.CURSOR)  # fmt: skip
DEFAULT_WORKLOADS = ("typing", "scrolling", "xterm-typing", "xterm-scroll", "window-drag")


def read_recording(path: Path) -> Iterator[tuple[float, int, bytes]]:
    with path.open("rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise SystemExit(f"{path} is not a bench.display_cpu recording.")
        while head := f.read(_REC.size):
            t, kind, n = _REC.unpack(head)
            yield t, kind, f.read(n)


def default_watermark() -> Watermark:
    """As the broker builds it from policies/default.toml (template, opacity 0.12), in UTC."""
    return Watermark("{user} {name} {school} {time} {session}",
                     {"user": "t0001", "name": "山田 花子", "school": "東小学校",
                      "session": "s-0123456789abcdef"}, opacity=0.12, tz=UTC)  # fmt: skip


async def record(path: Path, workloads: list[str], duration: float) -> None:
    from bench.desktop import Desktop
    from bench.drag_input import RfbInput
    from bench.drag_workloads import PageDrag, WindowDrag
    from bench.workloads import Scrolling, Typing, XtermScroll, XtermTyping
    from gateway.rfb.connection import open_rfb

    known = {w.name: w for w in (Typing, Scrolling, XtermTyping, XtermScroll, WindowDrag,
                                 PageDrag)}
    desktop = Desktop()
    desktop.start()
    start = time.monotonic()
    out = path.open("wb")
    out.write(MAGIC)

    def put(kind: int, data: bytes) -> None:
        out.write(_REC.pack(time.monotonic() - start, kind, len(data)) + data)

    fb = Framebuffer()
    try:
        conn = await open_rfb("127.0.0.1", desktop.rfb_port, desktop.password, fb,
                              encodings=RECORD_ENCODINGS,
                              on_receive=lambda d: put(BYTES, d))  # fmt: skip
        pipeline = DisplayPipeline(fb, watermark=default_watermark())
        pipeline.receive(wire.Resume(wire.VERSION), time.time())

        async def pump() -> None:
            await conn.request_update(False)
            async for event in conn.events():
                if isinstance(event, UpdateDone):
                    await conn.request_update(True)
                    job = pipeline.take_frame(time.time())
                    if job is not None:  # the gateway's pace: encode before the next request
                        data = await asyncio.to_thread(encode_frame, job)
                        pipeline.frame_sent(job, len(data), time.time())
                        pipeline.receive(wire.Ack(job.frame_id), time.time())

        task = asyncio.create_task(pump())
        for name in workloads:
            wl = known[name]()
            if isinstance(wl, PageDrag):  # the client's own input: through this connection
                wl.input = RfbInput(conn)
            await wl.setup(desktop)
            await asyncio.sleep(1.0)  # the window settles before its window opens
            put(MARK, name.encode())
            await wl.run(desktop, duration)
            put(MARK, b"")
            await wl.teardown(desktop)
        task.cancel()
        await conn.close()
    finally:
        out.close()
        desktop.stop()
    print(f"recorded {', '.join(workloads)} ({duration:g} s each) to {path}: "
          f"{path.stat().st_size / 1e6:.1f} MB")
