"""A tile's damage kept in parts (Framebuffer.parts, issue 11 part AM): where the union of what
was drawn in a tile would be mostly pixels nothing drew (the L of background a dragged window
uncovers, beside the window's copied title bar), the boxes are kept apart and re-sent apart."""

from __future__ import annotations

import random

import numpy as np
import pytest

from gateway.display.encoder import EncodeSettings
from gateway.display.framebuffer import MAX_PARTS, SPLIT_WASTE, Framebuffer
from gateway.display.pipeline import DisplayPipeline
from gateway.wire import display as w
from tests.display.canvas_model import CanvasModel, diff_pixels, expected

T0 = 1_700_000_000.0
BG = b"\xe0\xe0\xe0\x00"


def _drag_step(fb: Framebuffer, x: int, y: int, ww: int, wh: int, dx: int, dy: int) -> None:
    """One step of a window dragged right and down, in Xvnc's order: the window's CopyRect,
    then the background it uncovered (its old top rows and left columns)."""
    fb.copy(x, y, x + dx, y + dy, ww, wh)
    fb.fill(x, y, ww, dy, BG)
    fb.fill(x, y + dy, dx, wh, BG)


def test_the_uncovered_l_beside_a_dragged_window_is_kept_as_its_two_strips() -> None:
    fb = Framebuffer(256, 256)
    fb.fill(0, 0, 256, 256, BG)
    fb.fill(70, 70, 120, 100, b"\x10\x80\x10\x00")  # the window
    fb.take()
    _drag_step(fb, 70, 70, 120, 100, 15, 3)
    # In tile (1, 1) the strips are 58x3 and 15x55 of a 58x58 union: 2365 pixels not drawn.
    assert fb.parts[(1, 1)] == [(70, 70, 128, 73), (70, 73, 85, 128)]
    assert fb.damage[(1, 1)] == (70, 70, 128, 128)
    assert fb.resent()[(1, 1)] == (70, 73, 85, 128)  # the largest part
    # A tile the strips cross whole (below the window's corner) needs no parts.
    assert (1, 2) not in fb.parts
    fb.take()
    assert fb.parts == {}


def test_parts_merge_back_and_give_way() -> None:
    fb = Framebuffer(128, 128)
    fb.take()
    fb.damage_rect(0, 0, 64, 2)
    fb.damage_rect(0, 2, 3, 62)
    assert fb.parts[(0, 0)] == [(0, 0, 64, 2), (0, 2, 3, 64)]
    touched = fb.touched
    fb.take()
    fb.damage_rect(0, 0, 64, 2)
    fb.damage_rect(0, 2, 3, 62)
    fb.damage_rect(1, 10, 2, 5)  # inside a part: nothing changes
    assert fb.parts[(0, 0)] == [(0, 0, 64, 2), (0, 2, 3, 64)]
    assert touched == {(0, 0)}
    fb.damage_rect(3, 2, 61, 62)  # fills the rest: one box again
    assert (0, 0) not in fb.parts
    assert fb.damage[(0, 0)] == (0, 0, 64, 64)
    fb.take()
    for i in range(MAX_PARTS + 1):  # scattered dots: past MAX_PARTS, one union
        fb.damage_rect(i * 13, i * 13, 1, 1)
    assert (0, 0) not in fb.parts
    assert fb.damage[(0, 0)] == (0, 0, MAX_PARTS * 13 + 1, MAX_PARTS * 13 + 1)
    fb.take()
    fb.damage_rect(0, 0, 20, 20)
    fb.damage_rect(10, 10, 20, 20)  # 200 pixels of waste, under a third of the union
    assert SPLIT_WASTE <= 200 and fb.parts == {}


def test_a_copy_over_the_parts_or_a_new_damage_drops_them() -> None:
    fb = Framebuffer(256, 128)
    fb.take()
    fb.damage_rect(0, 0, 64, 2)
    fb.damage_rect(0, 2, 3, 62)
    fb.copy(128, 0, 0, 0, 64, 64)  # covers the tile's damage: the viewer copies it
    assert (0, 0) not in fb.damage and fb.parts == {}
    fb.damage_rect(0, 0, 64, 2)
    fb.damage_rect(0, 2, 3, 62)
    fb.set_damage({(1, 0): (64, 0, 128, 64)})  # a detected scroll's
    assert fb.parts == {}


@pytest.mark.parametrize("seed", range(4))
def test_parts_cover_every_drawn_pixel_within_their_union(seed: int) -> None:
    """Random rectangles, many of them strips: in each tile every drawn pixel lies in a part,
    every part lies in the tile's damage box, and that box is the bounding box of the drawn
    pixels."""
    split = 0
    for n in range(10):
        split += _random_parts(random.Random(seed * 10 + n))
    assert split  # some tiles were kept in parts


def _random_parts(rng: random.Random) -> int:
    fb = Framebuffer(rng.randint(64, 300), rng.randint(64, 200))
    fb.take()
    drawn = np.zeros((fb.height, fb.width), bool)
    for _ in range(rng.randint(2, 30)):
        x, y = rng.randrange(fb.width), rng.randrange(fb.height)
        wd, ht = rng.randint(1, min(70, fb.width - x)), rng.randint(1, min(70, fb.height - y))
        if rng.random() < 0.5:
            wd, ht = (wd, rng.randint(1, 3)) if rng.random() < 0.5 else (rng.randint(1, 3), ht)
        fb.damage_rect(x, y, wd, ht)
        drawn[y:y + ht, x:x + wd] = True
    for (tx, ty), (x0, y0, x1, y1) in fb.damage.items():
        tile = drawn[ty * 64:(ty + 1) * 64, tx * 64:(tx + 1) * 64]
        ys, xs = np.nonzero(tile)
        assert (x0, y0, x1, y1) == (tx * 64 + xs.min(), ty * 64 + ys.min(),
                                    tx * 64 + xs.max() + 1, ty * 64 + ys.max() + 1)
        covered = np.zeros_like(drawn)
        for p0, p1, p2, p3 in fb.parts.get((tx, ty), [(x0, y0, x1, y1)]):
            assert x0 <= p0 < p2 <= x1 and y0 <= p1 < p3 <= y1
            covered[p1:p3, p0:p2] = True
        box = (slice(y0, y1), slice(x0, x1))
        assert not (drawn[box] & ~covered[box]).any()
    return len(fb.parts)


def test_a_dragged_window_re_sends_only_the_background_it_uncovered() -> None:
    """Without the watermark a drag step's frame holds the copy and the uncovered pixels
    (before parts it re-sent the union per tile, with the window's pixels beside the L: 637
    more at the fourth step), and the canvas a viewer builds equals the desktop."""
    fb = Framebuffer(640, 480)
    fb.fill(0, 0, 640, 480, BG)
    p = DisplayPipeline(fb, watermark=None, detect_scroll=False,
                        settings=EncodeSettings(lossy=False))
    p.receive_data(w.encode(w.Resume(w.VERSION, 0)), T0)
    canvas, now = CanvasModel(), T0
    rng = random.Random(7)
    x, y, ww, wh = 70, 70, 300, 200
    fb.blit(x, y, ww, wh, rng.randbytes(ww * wh * 4))  # the window: busy pixels
    for _ in range(12):
        data = p.produce_frame(now)
        assert data is not None
        msgs = canvas.apply_bytes(data)
        p.receive(w.Ack(msgs[-1].frame_id), now)
        assert canvas.image is not None
        assert diff_pixels(canvas.image, expected(fb, None)) == 0
        if now > T0:
            sent = sum(m.w * m.h for m in msgs if isinstance(m, w.Tile | w.Fill))
            # The uncovered L; of the window at most a corner too small to be worth a part.
            assert ww * 3 + 15 * wh <= sent < ww * 3 + 15 * wh + SPLIT_WASTE, sent
        _drag_step(fb, x, y, ww, wh, 15, 3)
        x, y, now = x + 15, y + 3, now + 0.05
