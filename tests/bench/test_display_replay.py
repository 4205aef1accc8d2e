"""bench.display_cpu replay on a recording built here: the same bytes an Xvnc would have sent
(Raw and CopyRect updates of a few-colour desktop, between workload marks), no desktop needed."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from bench.display_record import _REC, BYTES, MAGIC, MARK
from bench.display_replay import CLEAN_START, replay
from gateway.rfb.encodings import Encoding

W, H = 960, 512
STEP = 24  # a scroll step: not a whole tile, so the stamps the copy moves leave the grid


def _rect(x: int, y: int, w: int, h: int, encoding: int, payload: bytes) -> bytes:
    return struct.pack(">HHHHi", x, y, w, h, encoding) + payload


def _update(*rects: bytes) -> bytes:
    return struct.pack(">BxH", 0, len(rects)) + b"".join(rects)


def _raw(screen: np.ndarray, y0: int, y1: int) -> bytes:
    """A Raw rectangle of the screen's rows y0..y1 (BGRX, the pixel format of ServerInit)."""
    rows = screen[y0:y1]
    bgrx = np.zeros((*rows.shape[:2], 4), np.uint8)
    bgrx[..., :3] = rows[..., ::-1]
    return _rect(0, y0, W, y1 - y0, Encoding.RAW, bgrx.tobytes())


def _text(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Few-colour "text": 8x8 cells, each one of four inks."""
    inks = np.array([[250, 250, 250], [20, 20, 20], [40, 90, 200], [200, 40, 40]], np.uint8)
    cells = rng.integers(0, 4, (rows // 8, W // 8))
    return np.repeat(np.repeat(inks[cells], 8, axis=0), 8, axis=1)


def _scroll(screen: np.ndarray, new_rows: np.ndarray) -> tuple[np.ndarray, bytes]:
    """The view scrolled up by STEP, as Xvnc sends it: a CopyRect and the exposed rows."""
    after = np.concatenate([screen[STEP:], new_rows])
    copy = _rect(0, 0, W, H - STEP, Encoding.COPYRECT, struct.pack(">HH", 0, STEP))
    return after, _update(copy, _raw(after, H - STEP, H))


def _recording(path: Path, first_scrolls: bool) -> Path:
    """Workload "a" ends on the same screen either way: scrolled there by copies, or drawn there
    whole (its stamps then on the grid). Workload "b" then scrolls on from it."""
    rng = np.random.default_rng(7)
    start = _text(rng, H)
    lines = [_text(rng, STEP) for _ in range(8)]
    records: list[tuple[int, bytes]] = [
        (BYTES, b"RFB 003.008\n\x01\x01\x00\x00\x00\x00" + struct.pack(">HH", W, H)
         + struct.pack(">BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
         + struct.pack(">I", 4) + b"desk"),
        (BYTES, _update(_raw(start, 0, H))),
        (MARK, b"a"),
    ]
    screen = start
    for new in lines[:4]:
        screen, update = _scroll(screen, new)
        if first_scrolls:
            records.append((BYTES, update))
    if not first_scrolls:
        records.append((BYTES, _update(_raw(screen, 0, H))))
    records += [(MARK, b""), (MARK, b"b")]
    for new in lines[4:]:
        screen, update = _scroll(screen, new)
        records.append((BYTES, update))
    records.append((MARK, b""))
    with path.open("wb") as f:
        f.write(MAGIC)
        for i, (kind, data) in enumerate(records):
            f.write(_REC.pack(i * 0.5, kind, len(data)) + data)
    return path


def test_a_clean_start_makes_a_workload_independent_of_the_drift_left_before(tmp_path: Path
                                                                              ) -> None:
    scrolled = _recording(tmp_path / "scrolled.rfbrec", first_scrolls=True)
    drawn = _recording(tmp_path / "drawn.rfbrec", first_scrolls=False)

    # Run on in one session, "b" re-sends different ink after "a" scrolled than after "a" drew
    # the same screen whole: its figures depend on the workload before it.
    on = {p: replay(p).tallies["b"] for p in (scrolled, drawn)}
    assert on[scrolled].frames == on[drawn].frames == 4
    assert on[scrolled].bytes_out != on[drawn].bytes_out

    clean = {p: replay(p, clean_start=True) for p in (scrolled, drawn)}
    b = {p: r.tallies["b"] for p, r in clean.items()}
    assert b[scrolled].frames == b[drawn].frames == 4
    assert b[scrolled].bytes_out == b[drawn].bytes_out
    # The key frames go in a tally of their own: one per workload, a whole screen each.
    for r in clean.values():
        keys = r.tallies[CLEAN_START]
        assert keys.frames == 2 and keys.seconds == 0.0
        assert keys.bytes_out > 10 * r.tallies["b"].bytes_out / r.tallies["b"].frames
