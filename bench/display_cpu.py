"""CPU and memory of the gateway's display path, offline and deterministic: `bench.display_cpu`.

    python -m bench.display_cpu record [--duration 20] [--workloads typing scrolling ...] [--out F]
    python -m bench.display_cpu replay F [--profile OUT.prof] [--memory] [--json]
    python -m bench.display_cpu compare F [--baseline main] [--rounds 2]

``record`` starts the bench desktop (bench.desktop: Xvnc 1920x1080 + openbox), runs the
workloads one after the other and saves every byte Xvnc sends to one RFB client, with the time
it arrived and a marker where each workload starts. The client asks for ZRLE (a compact file:
tens of MB, not the GBs Raw would take) and runs the real pipeline and encoder between updates,
so Xvnc's updates arrive at the pace a gateway asks for them.

``replay`` decodes that file (untimed) and turns every update back into the Raw + CopyRect +
Cursor update a gateway on the desktop's host receives (LOOPBACK_ENCODINGS), then times, per
update, exactly what a live session does on its display path: the RFB client parsing the Raw
bytes into the Framebuffer (fed in the connection's READ_SIZE chunks), the pipeline's
take_frame (damage, scroll detection, watermark bookkeeping, snapshots), encode_frame, and the
viewer's Ack (sent back at once). The watermark is the default policy's (template and opacity of
policies/default.toml), at a fixed clock that changes minute 30 s into the replay, in UTC: the
same bytes in, the same work done, on every run. CPU is process time (the whole path runs in
this one thread). ``--memory`` adds tracemalloc: what the session's objects hold at the end and
the largest transient allocation of one update (Python and numpy allocations; Pillow's image
buffers are not traced, so the process's VmHWM growth is reported beside it).

``compare`` runs ``replay`` in subprocesses, alternating the working tree's gateway/ with
``--baseline``'s (a git revision, exported with `git archive` into a temporary directory put
first on PYTHONPATH), ``--rounds`` times each, and prints the best (least CPU) round per side:
least CPU is the least disturbed by other processes on a shared machine.

Nothing here is attacker-facing: the recording is the bench's own file.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # run by path (compare's subprocesses): gateway may come first

from gateway.display.framebuffer import Framebuffer  # noqa: E402
from gateway.display.pipeline import DisplayPipeline, SessionInfo, encode_frame  # noqa: E402
from gateway.display.watermark import Watermark  # noqa: E402
from gateway.rfb.client import RfbClient  # noqa: E402
from gateway.rfb.connection import READ_SIZE  # noqa: E402
from gateway.rfb.encodings import LOOPBACK_ENCODINGS, Encoding, Rect  # noqa: E402
from gateway.rfb.events import NEED_DATA, ServerInit, UpdateDone  # noqa: E402
from gateway.rfb.messages import BGRX  # noqa: E402
from gateway.wire import display as wire  # noqa: E402

MAGIC = b"STAFFROOM-RFBREC-1\n"
_REC = struct.Struct(">dBI")  # | t f64 (s since start) | kind u8 | length u32 | data |
_BYTES, _MARK = 1, 2
RECORD_ENCODINGS = (Encoding.ZRLE, Encoding.COPYRECT, Encoding.DESKTOP_SIZE, Encoding.LAST_RECT,
                    Encoding.CURSOR)  # fmt: skip
OFFICE_MIX = ("typing", "scrolling")  # bench.capacity's office mix
DEFAULT_WORKLOADS = ("typing", "scrolling", "xterm-typing", "xterm-scroll", "window-drag")
# A fixed clock for the watermark: a minute boundary 30 s into the replay.
BASE_TIME = 1_796_083_200.0 + 30.0
RESULTS_DIR = ROOT / "bench" / "results"


# --- the recording file --------------------------------------------------------------------


def read_recording(path: Path) -> Iterator[tuple[float, int, bytes]]:
    with path.open("rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise SystemExit(f"{path} is not a bench.display_cpu recording.")
        while head := f.read(_REC.size):
            t, kind, n = _REC.unpack(head)
            yield t, kind, f.read(n)


# --- record --------------------------------------------------------------------------------


async def record(path: Path, workloads: list[str], duration: float) -> None:
    from bench.desktop import Desktop
    from bench.workloads import Scrolling, Typing, WindowDrag, XtermScroll, XtermTyping
    from gateway.rfb.connection import open_rfb

    known = {w.name: w for w in (Typing, Scrolling, XtermTyping, XtermScroll, WindowDrag)}
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
                              on_receive=lambda d: put(_BYTES, d))  # fmt: skip
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
            await wl.setup(desktop)
            await asyncio.sleep(1.0)  # the window settles before its window opens
            put(_MARK, name.encode())
            await wl.run(desktop, duration)
            put(_MARK, b"")
            await wl.teardown(desktop)
        task.cancel()
        await conn.close()
    finally:
        out.close()
        desktop.stop()
    print(f"recorded {', '.join(workloads)} ({duration:g} s each) to {path}: "
          f"{path.stat().st_size / 1e6:.1f} MB")


# --- replay --------------------------------------------------------------------------------


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
        if kind == _MARK:
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


def default_watermark() -> Watermark:
    """As the broker builds it from policies/default.toml (template, opacity 0.12), in UTC."""
    return Watermark("{user} {name} {school} {time} {session}",
                     {"user": "t0001", "name": "山田 花子", "school": "東小学校",
                      "session": "s-0123456789abcdef"}, opacity=0.12, tz=UTC)  # fmt: skip


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
           profiled: tuple[str, ...] = OFFICE_MIX, workloads: tuple[str, ...] = ()) -> Replay:
    """Replay the recording through a fresh session's display path; ``profile`` is enabled
    around the updates of the ``profiled`` workloads only. With ``workloads``, the replay stops
    once all of those have ended (the recording's first ones are the office mix)."""
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
        if name == "(between)":
            tally.seconds = 0.0
    if memory:
        del up
        out.held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    out.hwm_growth = _rss("VmHWM") - rss_before
    return out


def _step(client: RfbClient, pipeline: DisplayPipeline, raw: bytes, now: float
          ) -> tuple[int, int]:
    """One update, as a live session handles it: parse, take a frame, encode it, get the Ack."""
    view = memoryview(raw)
    for i in range(0, len(raw), READ_SIZE):
        client.feed(bytes(view[i : i + READ_SIZE]))
        while client.next_event() is not NEED_DATA:
            pass
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
    return {"workloads": rows,
            "office_mix": {"seconds": round(secs, 2), "cpu_s": round(cpu, 3),
                           "cpu_s_per_min": round(cpu / secs * 60, 2) if secs else None,
                           "sessions_per_core": round(secs / cpu, 1) if cpu else None},
            "memory": {"held_mib": round(result.held / 2**20, 2),
                       "transient_peak_mib": round(result.transient / 2**20, 2),
                       "vmhwm_growth_mib": round(result.hwm_growth / 2**20, 2)}}


# --- compare -------------------------------------------------------------------------------


def run_side(rec: Path, gateway_root: Path | None, memory: bool, workloads: list[str]
             ) -> dict[str, object]:
    env = dict(os.environ)
    if gateway_root is not None:
        env["PYTHONPATH"] = str(gateway_root) + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, str(Path(__file__).resolve()), "replay", str(rec), "--json"]
    if memory:
        argv.append("--memory")
    if workloads:
        argv += ["--workloads", *workloads]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"replay failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def compare(rec: Path, baseline: str, rounds: int, workloads: list[str], memory: bool
            ) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="display-cpu-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", baseline, "gateway"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        sides: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
        for i in range(rounds):
            for side in ("before", "after") if i % 2 == 0 else ("after", "before"):
                root = Path(tmp) if side == "before" else None
                sides[side].append(run_side(rec, root, False, workloads))
        mem = {side: run_side(rec, Path(tmp) if side == "before" else None, True, workloads)
               for side in ("before", "after")} if memory else {}  # fmt: skip
    best = {side: min(runs, key=lambda r: r["office_mix"]["cpu_s"])  # type: ignore[index]
            for side, runs in sides.items()}
    return {"baseline": baseline, "rounds": rounds, "recording": str(rec),
            "load": os.getloadavg(), "before": best["before"], "after": best["after"],
            "all_cpu": {s: [r["office_mix"]["cpu_s"] for r in runs]  # type: ignore[index]
                        for s, runs in sides.items()},
            "memory": {s: m["memory"] for s, m in mem.items()} or None}


def markdown(result: dict[str, object]) -> str:
    b, a = result["before"], result["after"]
    lines = ["| workload | s | before CPU s | after CPU s | before s/min | after s/min | "
             "before KB out | after KB out |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in a["workloads"].items():  # type: ignore[index]
        old = b["workloads"].get(name)  # type: ignore[index]
        if old is None or not row["seconds"]:
            continue
        lines.append(f"| {name} | {row['seconds']:.1f} | {old['cpu_s']:.2f} | {row['cpu_s']:.2f} "
                     f"| {old['cpu_s_per_min']:.2f} | {row['cpu_s_per_min']:.2f} "
                     f"| {old['bytes_out'] / 1e3:.1f} | {row['bytes_out'] / 1e3:.1f} |")
    bm, am = b["office_mix"], a["office_mix"]  # type: ignore[index]
    lines.append(f"\nOffice mix (typing + scrolling): {bm['cpu_s_per_min']} → "
                 f"{am['cpu_s_per_min']} CPU s per minute of session; display path alone "
                 f"{bm['sessions_per_core']} → {am['sessions_per_core']} sessions per core.")
    mem = result["memory"]
    if mem:
        lines.append(f"Memory (tracemalloc; VmHWM growth): before {mem['before']}, "  # type: ignore[index]
                     f"after {mem['after']}.")  # type: ignore[index]
    lines.append(f"All rounds' office-mix CPU s: {result['all_cpu']}; load {result['load']}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.display_cpu", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--duration", type=float, default=20.0)
    rec.add_argument("--workloads", nargs="+", default=list(DEFAULT_WORKLOADS))
    rec.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "office.rfbrec")
    rep = sub.add_parser("replay")
    rep.add_argument("recording", type=Path)
    rep.add_argument("--profile", type=Path)
    rep.add_argument("--profile-workloads", nargs="+", default=list(OFFICE_MIX))
    rep.add_argument("--memory", action="store_true")
    rep.add_argument("--workloads", nargs="+", default=[], help="stop once these have ended")
    rep.add_argument("--json", action="store_true")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("recording", type=Path)
    cmp_.add_argument("--baseline", default="main")
    cmp_.add_argument("--rounds", type=int, default=2)
    cmp_.add_argument("--out", type=Path)
    cmp_.add_argument("--workloads", nargs="+", default=list(OFFICE_MIX),
                      help="replay until these have ended ('all': the whole recording)")
    cmp_.add_argument("--memory", action="store_true", help="one more run each with tracemalloc")
    args = parser.parse_args()
    if args.cmd == "record":
        asyncio.run(record(args.out, args.workloads, args.duration))
    elif args.cmd == "replay":
        prof = cProfile.Profile() if args.profile else None
        result = summary(replay(args.recording, profile=prof, memory=args.memory,
                                profiled=tuple(args.profile_workloads),
                                workloads=tuple(args.workloads)))
        print(json.dumps(result, indent=None if args.json else 2))
        if prof is not None:
            prof.dump_stats(args.profile)
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    else:
        wl = [] if args.workloads == ["all"] else args.workloads
        result = compare(args.recording, args.baseline, args.rounds, wl, args.memory)
        text = markdown(result)
        print(text)
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
            args.out.with_suffix(".md").write_text(text + "\n")


if __name__ == "__main__":
    main()
