"""``bench.display_cpu replay``: a recording through a fresh session's display path, timed.

The recording (bench.display_record) is decoded untimed and every update turned back into the
Raw + CopyRect + Cursor update a gateway on the desktop's host receives (LOOPBACK_ENCODINGS);
then, per update, what a live session does is timed: the RFB client parsing the Raw bytes into
the Framebuffer (in the connection's READ_SIZE chunks), the pipeline's take_frame, encode_frame
and the viewer's Ack. The watermark is the default policy's at a fixed clock (BASE_TIME): the
same bytes in, the same work done, on every run. CPU is process time; ``memory`` adds tracemalloc.

Nothing here is attacker-facing: the recording is the bench's own file.
"""

from __future__ import annotations

import cProfile
import struct
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.display_record import MARK, RECORD_ENCODINGS, default_watermark, read_recording
from gateway.display import SOURCES_BECAUSE, compiled
from gateway.display.framebuffer import Framebuffer
from gateway.display.pipeline import DisplayPipeline, SessionInfo, encode_frame
from gateway.rfb.client import RfbClient
from gateway.rfb.connection import READ_SIZE
from gateway.rfb.encodings import LOOPBACK_ENCODINGS, Encoding, Rect
from gateway.rfb.events import NEED_DATA, ServerInit, UpdateDone
from gateway.rfb.messages import BGRX
from gateway.wire import display as wire

OFFICE_MIX = ("typing", "scrolling")  # bench.capacity's office mix
CLEAN_START = "(clean start)"  # the key frames of --clean-start, apart from the workloads
# A fixed clock for the watermark: a minute boundary 30 s into the replay.
BASE_TIME = 1_796_083_200.0 + 30.0


class _Ops:
    """A Surface that turns decoded drawing back into Raw / CopyRect / Cursor rectangles.

    ZRLE draws a rectangle 64x64 pixels at a time; Xvnc would have sent the same rectangle (its
    encode manager cuts damage into the same rectangles for every encoding) as one Raw
    rectangle, so ZRLE rectangles are drawn into a private canvas and re-emitted whole."""

    def __init__(self) -> None:
        self.rects: list[bytes] = []
        self.canvas = Framebuffer()

    def resize(self, width: int, height: int) -> None:
        self.canvas.resize(width, height)

    def fill(self, x: int, y: int, w: int, h: int, pixel: bytes) -> None:
        self.canvas.fill(x, y, w, h, pixel)
        self.rects.append(_rect(x, y, w, h, Encoding.RAW) + bytes(pixel[:4]) * (w * h))

    def blit(self, x: int, y: int, w: int, h: int, data: bytes) -> None:
        self.canvas.blit(x, y, w, h, data)
        self.rects.append(_rect(x, y, w, h, Encoding.RAW) + bytes(data))

    def copy(self, src_x: int, src_y: int, x: int, y: int, w: int, h: int) -> None:
        self.canvas.copy(src_x, src_y, x, y, w, h)
        self.rects.append(_rect(x, y, w, h, Encoding.COPYRECT) + struct.pack(">HH", src_x, src_y))

    def set_cursor(self, hot_x: int, hot_y: int, w: int, h: int, pixels: bytes, mask: bytes
                   ) -> None:
        self.rects.append(_rect(hot_x, hot_y, w, h, Encoding.CURSOR) + bytes(pixels) + bytes(mask))

    def update(self) -> bytes:
        rects, self.rects = self.rects, []
        self.canvas.take()
        return struct.pack(">BxH", 0, len(rects)) + b"".join(rects)


class _WholeRects:
    """Wraps the ZRLE decoder: draw into the canvas, then emit the rectangle as one Raw one."""

    draws_pixels = True

    def __init__(self, inner: object, ops: _Ops) -> None:
        self.inner, self.ops = inner, ops

    def decode_rect(self, rect: Rect, buf: object, surface: object, ctx: object) -> bool:
        if not self.inner.decode_rect(rect, buf, self.ops.canvas, ctx):  # type: ignore[attr-defined]
            return False
        x, y, w, h = rect.x, rect.y, rect.width, rect.height
        if w and h:
            pixels = self.ops.canvas.read(x, y, w, h)
            self.ops.rects.append(_rect(x, y, w, h, Encoding.RAW) + pixels)
        return True


def _rect(x: int, y: int, w: int, h: int, encoding: int) -> bytes:
    return struct.pack(">HHHHi", x, y, w, h, encoding)


@dataclass(slots=True)
class Update:
    t: float  # seconds since the recording started
    workload: str  # "" between workloads
    raw: bytes  # a Raw/CopyRect/Cursor FramebufferUpdate (or the handshake, first); b"" = mark
    ended: bool = False  # a mark: the workload ends here (else it starts)


def raw_updates(path: Path) -> Iterator[Update]:
    """The recording as the Raw updates a loopback gateway would have read, one at a time."""
    ops = _Ops()
    client = RfbClient(ops, password="x" * 8, encodings=RECORD_ENCODINGS)  # type: ignore[arg-type]
    workload = ""
    for t, kind, data in read_recording(path):
        if kind == MARK:
            yield Update(t, workload or data.decode(), b"", ended=not data)  # start or end
            workload = data.decode()
            continue
        client.feed(data)
        while (event := client.next_event()) is not NEED_DATA:
            if isinstance(event, ServerInit):
                decoders = client._parser._decoders  # type: ignore[union-attr]
                decoders[Encoding.ZRLE] = _WholeRects(decoders[Encoding.ZRLE], ops)
                init = struct.pack(">HH", event.width, event.height) + BGRX.pack() \
                    + struct.pack(">I", 4) + b"desk"
                yield Update(t, workload, b"RFB 003.008\n\x01\x01\x00\x00\x00\x00" + init)
            elif isinstance(event, UpdateDone):
                yield Update(t, workload, ops.update())
        client.data_to_send()


@dataclass(slots=True)
class Tally:
    seconds: float = 0.0  # recorded wall time of the workload
    cpu: float = 0.0
    updates: int = 0
    frames: int = 0
    bytes_out: int = 0
    first: float | None = None
    last: float = 0.0


@dataclass(slots=True)
class Replay:
    tallies: dict[str, Tally] = field(default_factory=dict)
    held: int = 0  # tracemalloc: bytes the session's objects hold at the end
    transient: int = 0  # tracemalloc: the largest allocation peak of one update
    hwm_growth: int = 0  # VmHWM at the end minus VmRSS before the session existed


def _rss(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def replay(path: Path, *, profile: cProfile.Profile | None = None, memory: bool = False,
           profiled: tuple[str, ...] = OFFICE_MIX, workloads: tuple[str, ...] = (),
           clean_start: bool = False) -> Replay:
    """Replay the recording through a fresh session's display path; ``profile`` is enabled
    around the updates of the ``profiled`` workloads only. With ``workloads``, the replay stops
    once all of those have ended (the recording's first ones are the office mix).

    ``clean_start``: each workload starts as if the viewer had just reconnected (a Resume, and
    the key frame it asks for, counted apart as CLEAN_START), so its figures do not depend on
    the watermark's drift map the workload before it left (docs/PERFORMANCE.md, part AF)."""
    updates = raw_updates(path)
    first = next(updates)
    if memory:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if memory else 0
    rss_before = _rss("VmRSS")
    fb = Framebuffer()
    client = RfbClient(fb, encodings=LOOPBACK_ENCODINGS)
    pipeline = DisplayPipeline(fb, watermark=default_watermark(), session=SessionInfo("s", "i"))
    client.feed(first.raw)
    while client.next_event() is not NEED_DATA:
        pass
    client.data_to_send()
    pipeline.receive(wire.Resume(wire.VERSION), BASE_TIME)
    out = Replay()
    ended: set[str] = set()
    for up in updates:
        tally = out.tallies.setdefault(up.workload or "(between)", Tally())
        if not up.raw:  # the workload's marks give its wall time
            tally.first = up.t if tally.first is None else tally.first
            tally.last = up.t
            ended.add(up.workload) if up.ended else None
            if workloads and ended.issuperset(workloads):
                break
            if clean_start and not up.ended:
                _clean_start(pipeline, BASE_TIME + up.t, out.tallies.setdefault(CLEAN_START,
                                                                                Tally()))
            continue
        if memory:
            start_mem = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        now = BASE_TIME + up.t
        prof = profile if profile is not None and up.workload in profiled else None
        if prof is not None:
            prof.enable()
        cpu = time.process_time()
        frames, nbytes = _step(client, pipeline, up.raw, now)
        tally.cpu += time.process_time() - cpu
        if prof is not None:
            prof.disable()
        if memory:
            out.transient = max(out.transient, tracemalloc.get_traced_memory()[1] - start_mem)
        tally.updates += 1
        tally.frames += frames
        tally.bytes_out += nbytes
    for name, tally in out.tallies.items():
        tally.seconds = tally.last - (tally.first or 0.0)
        if name in ("(between)", CLEAN_START):
            tally.seconds = 0.0
    if memory:
        del up
        out.held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    out.hwm_growth = _rss("VmHWM") - rss_before
    return out


def _clean_start(pipeline: DisplayPipeline, now: float, tally: Tally) -> None:
    """The viewer reconnects: Resume, and the key frame it asks for (which puts every tile's
    stamps back on the grid), tallied apart."""
    cpu = time.process_time()
    pipeline.receive(wire.Resume(wire.VERSION), now)
    frames, nbytes = _frame(pipeline, now)
    tally.cpu += time.process_time() - cpu
    tally.frames += frames
    tally.bytes_out += nbytes


def _step(client: RfbClient, pipeline: DisplayPipeline, raw: bytes, now: float
          ) -> tuple[int, int]:
    """One update, as a live session handles it: parse, take a frame, encode it, get the Ack."""
    view = memoryview(raw)
    for i in range(0, len(raw), READ_SIZE):
        client.feed(bytes(view[i : i + READ_SIZE]))
        while client.next_event() is not NEED_DATA:
            pass
    return _frame(pipeline, now)


def _frame(pipeline: DisplayPipeline, now: float) -> tuple[int, int]:
    job = pipeline.take_frame(now)
    if job is None:
        return 0, 0
    data = encode_frame(job)
    pipeline.frame_sent(job, len(data), now)
    pipeline.receive(wire.Ack(job.frame_id), now + 0.01)
    return 1, len(data)


def summary(result: Replay) -> dict[str, object]:
    rows = {}
    for name, t in result.tallies.items():
        rows[name] = {"seconds": round(t.seconds, 2), "cpu_s": round(t.cpu, 3),
                      "updates": t.updates, "frames": t.frames, "bytes_out": t.bytes_out,
                      "cpu_s_per_min": round(t.cpu / t.seconds * 60, 2) if t.seconds else None}
    mix = [result.tallies[n] for n in OFFICE_MIX if n in result.tallies]
    secs, cpu = sum(t.seconds for t in mix), sum(t.cpu for t in mix)
    return {"display_path": compiled.describe(SOURCES_BECAUSE)[1], "workloads": rows,
            "office_mix": {"seconds": round(secs, 2), "cpu_s": round(cpu, 3),
                           "cpu_s_per_min": round(cpu / secs * 60, 2) if secs else None,
                           "sessions_per_core": round(secs / cpu, 1) if cpu else None},
            "memory": {"held_mib": round(result.held / 2**20, 2),
                       "transient_peak_mib": round(result.transient / 2**20, 2),
                       "vmhwm_growth_mib": round(result.hwm_growth / 2**20, 2)}}
