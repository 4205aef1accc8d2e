"""Scroll detection: a view redrawn one line further on goes out as a Copy plus the new lines."""

from __future__ import annotations

import random

import pytest

from gateway.display.framebuffer import Framebuffer
from gateway.display.scroll import MIN_TILES, RowHashes
from gateway.wire import display as w
from tests.display.canvas_model import CanvasModel
from tests.display.test_pipeline import T0, assert_canvas_exact, attach, small_watermark, step

W, H, LINE = 640, 480, 16


def document(rng: random.Random, lines: int) -> list[bytes]:
    """BGRX rows of a text-like document: each line a few dark runs of varying length."""
    rows = []
    for n in range(lines):
        line = [bytearray(b"\xff\xff\xff\x00" * W) for _ in range(LINE)]
        x = 8 + (n * 7) % 40
        for _ in range(rng.randint(3, 8)):
            run = rng.randint(10, 60)
            for r in range(4, 12):  # glyph-like: every pixel row of a line differs
                lit = run - (r * 3 + n) % 7
                line[r][x * 4 : (x + lit) * 4] = bytes((n % 200, 40 + r, 90, 0)) * lit
            x = min(W - 70, x + run + rng.randint(4, 12))
        rows.extend(bytes(r) for r in line)
    return rows


def show(fb: Framebuffer, rows: list[bytes], first: int) -> None:
    """Redraw the whole view from document row `first`, as GTK does on a scroll (no CopyRect)."""
    fb.blit(0, 0, W, H, b"".join(rows[first : first + H]))


def test_a_redrawn_scroll_becomes_one_copy_and_only_new_lines_are_sent() -> None:
    rows = document(random.Random(5), 80)
    fb = Framebuffer(W, H)
    show(fb, rows, 0)
    p, canvas = attach(fb)
    step(p, canvas, T0)
    show(fb, rows, 3 * LINE)  # three lines down
    msgs = step(p, canvas, T0 + 1)
    copies = [m for m in msgs if isinstance(m, w.Copy)]
    assert copies == [w.Copy(0, 3 * LINE, 0, 0, W, H - 3 * LINE)]
    drawn = [m for m in msgs if isinstance(m, w.Tile | w.Fill)]
    assert all(m.y >= H - 3 * LINE - 1 for m in drawn)
    assert sum(m.w * m.h for m in drawn) <= W * 3 * LINE
    assert_canvas_exact(p, canvas)


def test_scrolling_up_and_down_with_a_watermark_stays_exact() -> None:
    rows = document(random.Random(6), 120)
    fb = Framebuffer(W, H)
    show(fb, rows, 40 * LINE)
    p, canvas = attach(fb, small_watermark())
    step(p, canvas, T0)
    for i, first in enumerate((41, 44, 43, 30, 31, 60, 60, 2)):
        show(fb, rows, first * LINE)
        fb.fill(W - 12, (i * 37) % H, 12, 40, b"\x80\x80\x80\x00")  # a scrollbar thumb moves
        step(p, canvas, T0 + 1 + i)
        assert_canvas_exact(p, canvas)


def test_unrelated_redraws_never_produce_a_copy() -> None:
    rng = random.Random(7)
    fb = Framebuffer(W, H)
    fb.blit(0, 0, W, H, bytes(rng.randrange(256) for _ in range(W * H * 4)))
    p, canvas = attach(fb)
    step(p, canvas, T0)
    fb.blit(0, 0, W, H, bytes(rng.randrange(256) for _ in range(W * H * 4)))
    msgs = step(p, canvas, T0 + 1)
    assert not any(isinstance(m, w.Copy) for m in msgs)
    assert_canvas_exact(p, canvas)


def test_detection_can_be_switched_off() -> None:
    rows = document(random.Random(8), 60)
    fb = Framebuffer(W, H)
    show(fb, rows, 0)
    p, canvas = attach(fb, detect_scroll=False)
    step(p, canvas, T0)
    show(fb, rows, LINE)
    assert not any(isinstance(m, w.Copy) for m in step(p, canvas, T0 + 1))
    watcher = CanvasModel()
    assert watcher.image is None


def test_the_watermark_moves_with_a_large_scroll_instead_of_being_resent() -> None:
    rows = document(random.Random(9), 80)
    fb = Framebuffer(W, H)
    show(fb, rows, 0)
    p, canvas = attach(fb, small_watermark())
    step(p, canvas, T0)
    stamped = len(p._layer.ink) if p._layer else 0
    show(fb, rows, 2 * LINE)
    msgs = step(p, canvas, T0 + 1)
    drawn = sum(m.w * m.h for m in msgs if isinstance(m, w.Tile | w.Fill))
    assert stamped > 10
    assert drawn <= W * 2 * LINE + 2 * W * 64  # new lines, plus stamps in the bottom tile rows
    assert_canvas_exact(p, canvas)


def test_a_shifted_layer_is_the_same_grid_moved_down() -> None:
    wm = small_watermark()
    a, b = wm.layer(W, H, 64, T0, 0), wm.layer(W, H, 64, T0, 5)
    sw, sh = a.stamp.size

    def seen(origins: set[tuple[int, int]]) -> set[tuple[int, int]]:  # stamps on the desktop
        return {(x, y) for x, y in origins if -sw < x < W and -sh < y < H}

    assert seen({(x, y + 5) for x, y in a.origins}) == seen(set(b.origins))


def test_the_first_scroll_after_a_window_opens_is_detected() -> None:
    """A document window drawn after the key frame in pieces too small to be analysed (a window
    opening, painted a tile row per frame): its rows are hashed as each frame goes out, so the
    very first wheel step is already a Copy."""
    rows = document(random.Random(8), 80)
    fb = Framebuffer(W, H)
    p, canvas = attach(fb)
    step(p, canvas, T0)  # the key frame: an empty desktop
    for y in range(0, H, fb.tile):  # the window opens: each frame under MIN_TILES tiles
        fb.blit(0, y, W, fb.tile, b"".join(rows[y : y + fb.tile]))
        assert len(fb.damage) < MIN_TILES
        step(p, canvas, T0 + 1)
    show(fb, rows, 2 * LINE)  # the first wheel step
    msgs = step(p, canvas, T0 + 2)
    assert [m for m in msgs if isinstance(m, w.Copy)] == [w.Copy(0, 2 * LINE, 0, 0, W,
                                                                 H - 2 * LINE)]
    assert sum(m.w * m.h for m in msgs if isinstance(m, w.Tile | w.Fill)) <= W * 2 * LINE
    assert_canvas_exact(p, canvas)


def test_wheel_steps_keep_the_scrolled_view_on_one_drift_and_exact() -> None:
    """Each step re-sends the lines it exposes; those tiles take the drift of the lines that
    scrolled above them, so the view stays one region of one drift instead of a band per step
    (issue 11 part AE) and the canvas stays exact."""
    rows = document(random.Random(11), 140)
    fb = Framebuffer(W, H)
    show(fb, rows, 0)
    p, canvas = attach(fb, small_watermark())
    step(p, canvas, T0)
    for i in range(1, 13):
        show(fb, rows, i * 3 * LINE)  # a wheel step: three lines, not a whole tile
        msgs = step(p, canvas, T0 + i)
        assert [m for m in msgs if isinstance(m, w.Copy)] == [
            w.Copy(0, 3 * LINE, 0, 0, W, H - 3 * LINE)]
        assert_canvas_exact(p, canvas)
        drifts = set(p._drift.values())
        assert len(drifts) == 1 and isinstance(next(iter(drifts))[0], int), (i, drifts)
    assert len(p._drift) == (W // 64) * -(-H // 64)  # every tile, the exposed ones too


def redraw_changed(fb: Framebuffer, rows: list[bytes]) -> None:
    """Draw ``rows`` from the top, damaging only the pixels that change in each row, as a VNC
    server sends them: a blank margin that stays blank is not sent again."""
    for y, new in enumerate(rows):
        old = fb.read(0, y, W, 1)
        differs = [x for x in range(W) if old[x * 4 : x * 4 + 3] != new[x * 4 : x * 4 + 3]]
        if differs:
            x0, x1 = differs[0], differs[-1] + 1
            fb.blit(x0, y, x1 - x0, 1, new[x0 * 4 : x1 * 4])


@pytest.mark.parametrize("redraw", ["view", "changed pixels"])
def test_a_view_above_a_status_bar_in_the_same_tile_row_stays_on_one_drift(redraw: str) -> None:
    """The view ends inside a tile row whose last pixel rows are a static status bar, as most
    windows do. The lines a step re-sends at the view's bottom take the scroll's drift although
    they share their tiles with the bar, so the next step does not carry a band of the bar's
    drift up into the view (issue 11 part AF: most of the recorded view's tiles were cut into
    parts by such bands). With only the changed pixels re-sent (``changed pixels``), the blank
    pixels beside a new line keep their drift and may ride up as parts: the canvas stays
    exact either way."""
    view, bar = 440, b"\xc0\xc0\xc0\x00"  # the view's rows 0..440; the bar fills 440..480
    rows = document(random.Random(12), 140)
    fb = Framebuffer(W, H)
    fb.blit(0, 0, W, view, b"".join(rows[:view]))
    fb.fill(0, view, W, H - view, bar)
    fb.fill(20, view + 12, 200, 10, b"\x20\x20\x20\x00")  # the bar's text
    p, canvas = attach(fb, small_watermark())
    step(p, canvas, T0)
    for i in range(1, 13):
        shown = rows[i * 3 * LINE : i * 3 * LINE + view]
        if redraw == "view":
            fb.blit(0, 0, W, view, b"".join(shown))
        else:
            redraw_changed(fb, shown)
        msgs = step(p, canvas, T0 + i)
        (c,) = [m for m in msgs if isinstance(m, w.Copy)]
        assert c.src_y - c.dst_y == 3 * LINE and c.h >= view - 4 * LINE
        assert_canvas_exact(p, canvas)
        if redraw != "view":
            continue
        inside = {p._drift.get((tx, ty), (0, 0)) for tx in range(W // 64) for ty in range(H // 64)
                  if c.dst_x <= tx * 64 and (tx + 1) * 64 <= c.dst_x + c.w
                  and c.dst_y <= ty * 64 and (ty + 1) * 64 <= c.dst_y + c.h}
        assert len(inside) == 1 and isinstance(next(iter(inside))[0], int), (i, inside)


# --- the hash table carried along with the desktop's copies -------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_hashes_carried_with_copies_equal_hashing_everything_again(seed: int) -> None:
    """After every frame of copies (whole bands and parts of them, up and down, sideways) and
    damage before and after them, the table update() leaves equals one hashed from scratch: a
    hash moved with a copy is the hash of the pixels there, and rows it cannot know are
    hashed again. (A wrong hash could make scroll detection send a wrong copy.)"""
    rng = random.Random(seed)
    width, height = rng.choice([(1000, 300), (1920, 200), (700, 130)])
    fb = Framebuffer(width, height, tile=64)
    fb.blit(0, 0, width, height, rng.randbytes(width * height * 4))
    fb.take()
    hashes = RowHashes(seed=bytes([seed]) * 16)
    hashes.reset(fb)
    carried = 0
    hashed: list[int] = []  # band-rows hashed again in a frame, per call (a run of tile rows)
    real = hashes._hash_into

    def spy(fb: Framebuffer, band: int, y0: int, y1: int, out: object) -> None:
        hashed.append(-(-(y1 - y0) // 64))
        real(fb, band, y0, y1, out)  # type: ignore[arg-type]

    for _ in range(40):
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.7:  # a copy: often a whole-width scroll of a terminal's rows
                w = width if rng.random() < 0.4 else rng.randint(1, width)
                h = rng.randint(1, height - 1)
                sx = rng.randint(0, width - w)
                dx = sx if rng.random() < 0.8 else rng.randint(0, width - w)
                fb.copy(sx, rng.randint(0, height - h), dx, rng.randint(0, height - h), w, h)
            else:
                w, h = rng.randint(1, 120), rng.randint(1, 40)
                x, y = rng.randint(0, width - w), rng.randint(0, height - h)
                fb.blit(x, y, w, h, rng.randbytes(w * h * 4))
        touched = fb.touched
        copies, damage, _ = fb.take()
        hashed.clear()
        hashes._hash_into = spy  # type: ignore[method-assign]
        hashes.update(fb, touched, copies, damage)
        del hashes._hash_into
        carried += len(hashes._band_rows(touched)) - sum(hashed)
        fresh = RowHashes(seed=bytes([seed]) * 16)
        fresh.reset(fb)
        assert (hashes.table == fresh.table).all()
    assert carried > 0  # some band-rows took the hashes moved with them


def _reference_mismatch_boxes(differs: list[list[bool]], b0: int, bw: int, x0: int, x1: int,
                              y0: int, t: int) -> dict[tuple[int, int], tuple[int, int, int, int]]:
    """Row by row: every mismatching row of a band grows its tiles' boxes (inside [x0, x1))."""
    out: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    for i, band_rows in enumerate(differs):
        bx0, bx1 = max(x0, (b0 + i) * bw), min(x1, (b0 + i + 1) * bw)
        for r, bad in enumerate(band_rows):
            if not bad:
                continue
            y = y0 + r
            for col in range(bx0 // t, (bx1 - 1) // t + 1):
                box = (max(bx0, col * t), y, min(bx1, (col + 1) * t), y + 1)
                old = out.get((col, y // t))
                out[(col, y // t)] = box if old is None else (
                    old[0], min(old[1], y), old[2], max(old[3], y + 1))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_the_rows_a_scroll_leaves_to_send_are_boxed_per_tile_as_row_by_row(seed: int) -> None:
    """scroll._mismatch_boxes (numpy over all bands and tile rows) against a row-by-row walk:
    the same boxes, in the order bands, then tile rows, then columns."""
    import numpy as np

    from gateway.display.scroll import _mismatch_boxes

    rng = random.Random(seed)
    t = rng.choice([16, 64])
    bw = t * 4
    nb, b0 = rng.randint(1, 5), rng.randint(0, 3)
    x0 = b0 * bw + rng.choice([0, rng.randrange(bw)])
    x1 = rng.randint(max(x0 + 1, (b0 + nb - 1) * bw + 1), (b0 + nb) * bw)
    y0, n = rng.randint(0, 200), rng.randint(1, 300)
    density = rng.choice([0.01, 0.1, 0.5])
    differs = [[rng.random() < density for _ in range(n)] for _ in range(nb)]
    got = _mismatch_boxes(np.array(differs, np.bool_), b0, bw, x0, x1, y0, t)
    want = _reference_mismatch_boxes(differs, b0, bw, x0, x1, y0, t)
    assert got == want
    order = sorted(want, key=lambda k: ((k[0] * t) // bw, k[1], k[0]))
    assert list(got) == order
