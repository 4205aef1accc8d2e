"""Where a workload's display bytes go, from a bench.display_cpu recording: `bench.drag_breakdown`.

    python -m bench.drag_breakdown RECORDING [--workload window-drag] [--no-watermark]

Replays the recording from the start (bytes depend on the stamp drift earlier workloads leave)
exactly as ``bench.display_cpu replay`` does, and for the frames of ``--workload`` splits the
bytes out by message kind (Copy, Fill, PALETTE, WebP, JPEG, Cursor, Sync/other) with the pixels
each covers, and splits the encoded tiles by what the desktop showed under them: one flat colour
(background the window uncovered: without a watermark a Fill; with it, stamp ink on a flat
colour), few colours (≤ 16: window frames, titles) or more. Bench-only; nothing attacker-facing.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench import display_replay
from gateway.display import encoder, pipeline
from gateway.wire import display as wire

_current = {"workload": ""}
_stats: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0])  # kind -> [msgs, bytes, pixels]
_frames = {"n": 0}


def _desk_colors(job: pipeline.FrameJob, x: int, y: int, w: int, h: int) -> int:
    """Distinct desktop colours (pre-watermark) under a tile, from the frame's snapshots."""
    seen: set[int] = set()
    for s in job.snaps:
        x0, y0 = max(x, s.x), max(y, s.y)
        x1, y1 = min(x + w, s.x + s.w), min(y + h, s.y + s.h)
        if x0 >= x1 or y0 >= y1:
            continue
        a = np.frombuffer(s.bgrx, np.uint32).reshape(s.h, s.w)[
            y0 - s.y : y1 - s.y, x0 - s.x : x1 - s.x
        ]
        seen.update(np.unique(a & 0xFFFFFF).tolist())
        if len(seen) > 16:
            return 17
    return len(seen)


def _encode_frame(job: pipeline.FrameJob) -> bytes:
    data = pipeline.encode_frame(job)
    if _current["workload"] != _args.workload:
        return data
    _frames["n"] += 1
    for m in job.head:
        _add(type(m).__name__, len(wire.encode(m)), m.w * m.h if isinstance(m, wire.Copy) else 0)
    if job.cursor is not None:
        c = job.cursor
        png = encoder.encode_cursor(c.w, c.h, c.rgba) if c.w and c.h else b""
        _add("Cursor", len(png) + 16, c.w * c.h)
    for m in encoder.encode_tiles(list(job.snaps), job.layer, job.settings, job.drift):
        n, px = len(wire.encode(m)), m.w * m.h
        if isinstance(m, wire.Fill):
            _add("Fill", n, px)
            continue
        _add(m.format.name, n, px)
        colors = _desk_colors(job, m.x, m.y, m.w, m.h)
        under = "flat" if colors == 1 else "few(<=16)" if colors <= 16 else "many"
        _add(f"  {m.format.name} over {under} desktop", n, px)
    return data


def _add(kind: str, nbytes: int, pixels: int) -> None:
    s = _stats[kind]
    s[0] += 1
    s[1] += nbytes
    s[2] += pixels


def _raw_updates(path: Path):  # type: ignore[no-untyped-def]
    for up in _orig_raw_updates(path):
        _current["workload"] = up.workload
        yield up


_orig_raw_updates = display_replay.raw_updates
_args: argparse.Namespace


def main() -> None:
    global _args
    parser = argparse.ArgumentParser(prog="bench.drag_breakdown")
    parser.add_argument("recording", type=Path)
    parser.add_argument("--workload", default="window-drag")
    parser.add_argument("--no-watermark", action="store_true")
    parser.add_argument("--json", action="store_true")
    _args = parser.parse_args()
    display_replay.encode_frame = _encode_frame  # type: ignore[assignment]
    display_replay.raw_updates = _raw_updates  # type: ignore[assignment]
    if _args.no_watermark:
        display_replay.default_watermark = lambda: None  # type: ignore[assignment,return-value]
    result = display_replay.replay(_args.recording, workloads=(_args.workload,))
    total = result.tallies[_args.workload].bytes_out
    rows = {
        k: {"msgs": int(v[0]), "KB": round(v[1] / 1e3, 1), "Mpx": round(v[2] / 1e6, 2)}
        for k, v in sorted(_stats.items(), key=lambda kv: -kv[1][1])
    }
    if _args.json:
        print(json.dumps({"frames": _frames["n"], "KB_out": total / 1e3, "kinds": rows}))
        return
    print(f"{_args.workload}: {_frames['n']} frames, {total / 1e3:.1f} KB out")
    print("| kind | messages | KB | Mpixels |\n|---|---:|---:|---:|")
    for k, r in rows.items():
        print(f"| {k} | {r['msgs']} | {r['KB']} | {r['Mpx']} |")


if __name__ == "__main__":
    main()
