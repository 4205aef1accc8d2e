"""Stamped background re-sent as a copy of the same view elsewhere on the canvas
(gateway/display/ink_copies.py, issue 11 part AM): a dragged window's uncovered background
goes out as Copy messages where the canvas already shows the same stamps on the same colour,
and the canvas stays exactly the desktop plus the watermark."""

from __future__ import annotations

import random

import numpy as np

from gateway.display.encoder import EncodeSettings, RegionSnapshot, to_rgbx
from gateway.display.framebuffer import Framebuffer, tiles_in
from gateway.display.ink_copies import _inked, _pieces, _source, ink_copies, joined, lattice
from gateway.display.pipeline import DisplayPipeline
from gateway.display.watermark import Watermark, WatermarkLayer
from gateway.wire import display as w
from tests.display.canvas_model import CanvasModel, diff_pixels, expected

T0 = 1_700_000_000.0
W, H = 960, 640
BG = b"\xe0\xc0\xa0\x00"


def _stamp() -> Watermark:
    return Watermark("{user_id}\n{time}", {"user_id": "t-0042 山田"}, font_size=12,
                     spacing=(200, 120), opacity=0.4)  # fmt: skip


def _flat_desktop() -> tuple[Framebuffer, WatermarkLayer]:
    """A flat desktop whose key frame went out: the canvas shows the background and stamps."""
    fb = Framebuffer(W, H)
    fb.fill(0, 0, W, H, BG)
    p = DisplayPipeline(fb, watermark=_stamp())
    p.receive(w.Resume(w.VERSION), T0)
    p.produce_frame(T0)
    assert p._layer is not None
    return fb, p._layer


def _drag(ink_copies: bool, steps: int = 30) -> tuple[int, int, int]:
    """A text window dragged around a flat desktop, in Xvnc's order (the window's copy, then
    the background it uncovered); the canvas checked after every frame. Returns (bytes sent,
    copies beyond the desktop's, frames)."""
    fb = Framebuffer(W, H)
    fb.fill(0, 0, W, H, BG)
    p = DisplayPipeline(fb, watermark=_stamp(), detect_scroll=False,
                        settings=EncodeSettings(lossy=False))
    p.ink_copies = ink_copies
    p.receive(w.Resume(w.VERSION), T0)
    canvas, rng = CanvasModel(), random.Random(4)
    x, y, ww, wh = 100, 100, 240, 160
    for i in range(wh // 16):
        line = bytes(rng.choice((0, 255)) for _ in range(ww * 12))
        fb.blit(x, y + i * 16, ww, 12, b"".join(bytes((v, v, v, 0)) for v in line))
    sent = extra = 0
    now = T0
    for n in range(steps + 1):
        data = p.produce_frame(now)
        assert data is not None
        msgs = canvas.apply_bytes(data)
        p.receive(w.Ack(msgs[-1].frame_id), now)
        assert canvas.image is not None
        assert diff_pixels(canvas.image, expected(fb, p._layer, p._drift)) == 0, n
        if n:
            sent += len(data)
            extra += sum(isinstance(m, w.Copy) for m in msgs) - 1
        dx, dy = (11, 4) if n % 20 < 10 else (-9, 6)
        dy = dy if y + dy + wh < H else -dy
        fb.copy(x, y, x + dx, y + dy, ww, wh)
        old = (x, y, x + ww, y + wh)
        x, y = x + dx, y + dy
        # What the move uncovered: the old place outside the new one.
        top, bottom = (old[1], y) if dy > 0 else (y + wh, old[3])
        left, right = (old[0], x) if dx > 0 else (x + ww, old[2])
        fb.fill(old[0], top, ww, bottom - top, BG)
        fb.fill(left, max(old[1], y), right - left, min(old[3], y + wh) - max(old[1], y), BG)
        now += 0.04
    return sent, extra, steps


def test_a_dragged_window_s_stamped_background_goes_out_as_copies_and_stays_exact() -> None:
    with_copies, copies, _ = _drag(True)
    without, none, _ = _drag(False)
    assert none == 0
    assert copies > 10  # most steps found some of their stamps on the canvas
    assert with_copies < 0.9 * without, (with_copies, without)


def test_the_lattice_is_the_stamps_own_steps() -> None:
    fb = Framebuffer(W, H)
    p = DisplayPipeline(fb, watermark=_stamp())
    p.receive(w.Resume(w.VERSION), T0)
    p.produce_frame(T0)
    layer = p._layer
    assert layer is not None
    steps = lattice(layer)
    origins = set(layer.origins)
    reach = max(max(abs(sx), abs(sy)) for sx, sy in steps)
    inner = [(ox, oy) for ox, oy in origins if reach <= ox < W - reach and reach <= oy < H - reach]
    assert inner and steps
    # Every step moves each stamp onto another; the shortest first.
    assert all((ox + sx, oy + sy) in origins for sx, sy in steps for ox, oy in inner)
    lengths = [sx * sx + sy * sy for sx, sy in steps]
    assert lengths == sorted(lengths)


def test_a_region_is_cut_where_the_stamps_drift_changes() -> None:
    drift = {(1, 0): (5, 0), (2, 0): (5, 0), (3, 0): (((192, 0, 224, 64), (5, 0)),
                                                      ((224, 0, 256, 64), (-7, 2)))}
    assert _pieces(drift, 0, 10, 256, 20, 64) == [
        ((0, 10, 64, 30), (0, 0)), ((64, 10, 192, 30), (5, 0)),
        ((192, 10, 224, 30), (5, 0)), ((224, 10, 256, 30), (-7, 2))]
    gap = {(0, 0): (((0, 0, 30, 64), (1, 1)),)}  # parts that leave a gap: no cut to rely on
    assert _pieces(gap, 0, 0, 64, 8, 64) is None


def test_a_source_is_taken_only_where_its_pixels_as_shown_are_the_region_s() -> None:
    """The byte comparison is the last word: the same colour at the same drift one lattice
    step away is not enough where the pixels the viewer shows there differ."""
    fb, layer = _flat_desktop()
    x0, y0 = next((x, y) for x, y in layer.origins if 200 <= x < W - 400 and 150 <= y < H - 300)

    def shown(x: int, y: int) -> bytes:
        return to_rgbx(RegionSnapshot(x, y, 40, 12, BG * (40 * 12), 64), layer, {})

    def inked(x: int, y: int) -> int:
        px = np.frombuffer(shown(x, y), np.uint32)
        return int((px != px[0]).sum())

    # The box on the stamp's text that shows the most ink.
    ox, oy = max(((x0 + dx, y0 + dy) for dy in range(0, 48, 4) for dx in range(0, 64, 8)),
                 key=lambda o: inked(*o))
    assert inked(ox, oy) > 40 and _inked(layer, (ox, oy, ox + 40, oy + 12), (0, 0))
    box, want = (ox, oy, ox + 40, oy + 12), shown(ox, oy)
    colour = int.from_bytes(BG, "little")
    anchor = (box, (0, 0))
    src = _source(fb, box, anchor, colour, want, set(), set(), {}, layer)
    assert src is not None and src != (ox, oy)
    assert _source(fb, box, anchor, colour, bytes(len(want)), set(), set(), {}, layer) is None
    # Nor from tiles the frame re-sends or the viewer holds as JPEG.
    tiles = set(tiles_in(src[0], src[1], 40, 12, 64))
    assert _source(fb, box, anchor, colour, want, tiles, set(), {}, layer) != src
    assert _source(fb, box, anchor, colour, want, set(), tiles, {}, layer) != src
    # A preferred vector is tried first, and taken only where its pixels are the region's too.
    assert _source(fb, box, anchor, colour, want, set(), set(), {}, layer,
                   (src[0] - ox, src[1] - oy)) == src
    assert _source(fb, box, anchor, colour, want, set(), set(), {}, layer, (3, 1)) == src


def test_a_region_across_two_drifts_goes_out_as_one_copy_where_the_canvas_shows_it() -> None:
    """A strip that crosses a tile at another drift was a Copy per inked piece and a Fill per
    inkless one; where the canvas shows the whole strip as it should be, it is one Copy, and
    the canvas stays exact."""
    fb, layer = _flat_desktop()
    cases = 0
    checked = 0
    for ty, tx in ((ty, tx) for ty in range(1, 8) for tx in range(1, 12)):
        drift = {(tx + 1, ty): (5, 0)}  # the tile right of the strip's first: stamps moved 5 px
        for y, a, b in ((y, a, b) for y in range(ty * 64, ty * 64 + 58, 2) for a in (24, 40)
                        for b in (4, 12)):
            snap = RegionSnapshot((tx + 1) * 64 - a, y, a + b, 6, BG * ((a + b) * 6), 64)
            pieces = _pieces(drift, snap.x, snap.y, snap.w, snap.h, 64)
            assert pieces is not None and len(pieces) == 2
            left, right = pieces
            if not _inked(layer, *left) or _inked(layer, *right):
                continue  # the case here: ink on the grid's side, none on the moved side
            cases += 1
            keep, out = ink_copies(fb, [snap], set(tiles_in(snap.x, snap.y, snap.w, snap.h, 64)),
                                   set(), drift, layer)
            assert keep == [] and len(out) == 1, (snap, out)
            (m,) = out
            assert isinstance(m, w.Copy) and (m.dst_x, m.dst_y, m.w, m.h) == (
                snap.x, snap.y, snap.w, snap.h)
            if checked < 3:  # the canvas as the viewer shows it, and should
                checked += 1
                image = expected(fb, layer, drift)
                assert image.crop((m.src_x, m.src_y, m.src_x + m.w, m.src_y + m.h)).tobytes() \
                    == image.crop((m.dst_x, m.dst_y, m.dst_x + m.w, m.dst_y + m.h)).tobytes()
    assert cases > 50


def test_copies_by_one_vector_and_fills_of_one_colour_join_where_they_share_an_edge() -> None:
    down = [w.Copy(500, 300, 100, 0, 12, 64), w.Copy(500, 364, 100, 64, 12, 64),
            w.Copy(500, 428, 100, 128, 12, 30)]
    other = w.Copy(900, 0, 112, 0, 8, 64)  # beside the first, by another vector
    fills = [w.Fill(0, 200, 30, 5, 1, 2, 3), w.Fill(30, 200, 34, 5, 1, 2, 3),
             w.Fill(64, 200, 10, 5, 9, 9, 9)]
    assert joined([down[0], other, *fills, down[1], down[2]]) == [
        w.Copy(500, 300, 100, 0, 12, 158), other, w.Fill(0, 200, 64, 5, 1, 2, 3), fills[2]]
    # Same vector but not a whole shared edge: kept apart.
    apart = [w.Copy(500, 300, 100, 0, 12, 64), w.Copy(501, 364, 101, 64, 11, 64)]
    assert joined(apart) == apart


def test_one_fill_goes_under_a_strip_whose_middle_tile_has_ink() -> None:
    """Background strip across three tiles, ink only in the middle one: one Fill under the
    whole strip and a Copy over its middle, not Fill, Copy, Fill."""
    fb, layer = _flat_desktop()
    b, g, r = BG[:3]
    strips = [(t_y, t_x, row) for t_y in range(1, 8) for t_x in range(1, 12)
              for row in range(t_y * 64, t_y * 64 + 58, 2)]
    for ty, tx, y in strips:
        snaps = [RegionSnapshot(x, y, 64, 6, BG * (64 * 6), 64) for x in
                 ((tx - 1) * 64, tx * 64, (tx + 1) * 64)]
        if [_inked(layer, (s.x, y, s.x + 64, y + 6), (0, 0)) for s in snaps] != [0, 1, 0]:
            continue
        keep, out = ink_copies(fb, snaps, {(tx - 1, ty), (tx, ty), (tx + 1, ty)}, set(), {},
                               layer)
        if not any(isinstance(m, w.Copy) for m in out):
            continue  # no source for the middle one: nothing to lay a Fill under
        assert keep == [] and out[0] == w.Fill((tx - 1) * 64, y, 192, 6, r, g, b), out
        assert out[1:] and all(isinstance(m, w.Copy) and m.dst_x == tx * 64 for m in out[1:])
        return
    raise AssertionError("no strip with ink only in its middle tile")
