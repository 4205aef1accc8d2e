"""stamp_drift alone: the lattice the stamps repeat on, parts that follow copies exactly as RFB
applies them, and a frame's same-delta pieces that leave no seams."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
from PIL import Image

from gateway.display.framebuffer import Box, CopyOp, Framebuffer
from gateway.display.stamp_drift import KEEP_PARTS, StampDrift, _has_ink, _ink, reduce_drift
from gateway.display.stamp_places import composite
from gateway.display.watermark import Watermark, WatermarkLayer
from tests.display.sources import source_module

W, H, T = 640, 480, 64


def layer(spacing: tuple[int, int] = (160, 110), slot_every: float = 0.0) -> WatermarkLayer:
    wm = Watermark("{user_id}\n{time}", {"user_id": "t-0042 山田"}, font_size=11,
                   spacing=spacing, opacity=0.4, move_every=slot_every)  # fmt: skip
    return wm.layer(W, H, T, 1_700_000_123.0)


def pieces(x: int, y: int, w: int, h: int, d: tuple[int, int], hole: tuple[int, int, int, int]
           ) -> list[CopyOp]:
    """A region copy by ``d`` minus a hole, cut as Xvnc cuts it: bands around the hole, in the
    order that makes copying them one by one equal copying the region at once."""
    hx, hy, hw, hh = hole
    dst = [(x, y, w, hy - y), (x, hy, hx - x, hh), (hx + hw, hy, x + w - hx - hw, hh),
           (x, hy + hh, w, y + h - hy - hh)]
    dst = [r for r in dst if r[2] > 0 and r[3] > 0]
    dst.sort(key=lambda r: (r[1] * (1 if d[1] <= 0 else -1), r[0] * (1 if d[0] <= 0 else -1)))
    return [CopyOp(a - d[0], b - d[1], a, b, c, e) for a, b, c, e in dst]


@pytest.mark.parametrize(("spacing", "move_every"),
                         [((160, 110), 0.0), ((161, 97), 0.0), ((480, 300), 0.0),
                          ((160, 110), 300.0), ((161, 97), 7.0)])  # moved: grid at an offset
def test_a_lattice_step_shows_the_same_stamps(spacing: tuple[int, int], move_every: float
                                              ) -> None:
    """The claim everything rests on: the layer moved by d and by reduce_drift(d) is one image
    wherever a tile can look (the layer's off-desktop stamps cover every reduced drift)."""
    lay, rng = layer(spacing, move_every), random.Random(1)
    sx, sy = lay.pitch
    assert sx % 2 == 0
    blank = Image.new("RGB", (T, T), (200, 200, 200))
    for _ in range(60):
        d = (rng.randint(-sx + 1, sx - 1), rng.randint(-sy + 1, sy - 1))
        r = reduce_drift(d, lay.pitch)
        assert abs(r[0]) <= sx // 2 and abs(r[1]) <= sy // 2
        tx, ty = rng.randrange(W // T), rng.randrange(H // T)
        # only drifts the layer's margin covers can be compared directly
        a = composite(blank.copy(), lay, tx * T, ty * T, d)
        b = composite(blank.copy(), lay, tx * T, ty * T, r)
        assert a.tobytes() == b.tobytes(), (d, r)


def test_reduce_drift_is_a_canonical_form() -> None:
    p = (160, 110)
    for d in [(0, 0), (160, 0), (80, 110), (-80, -110), (240, 330), (0, 220)]:
        assert reduce_drift(d, p) == (0, 0), d
    assert reduce_drift((13, -7), p) == (13, -7)
    assert reduce_drift((13 + 80, -7 + 110), p) == (13, -7)
    assert reduce_drift((5, 0), (0, 0)) == (5, 0)  # no layer: left alone


def test_a_region_cut_in_pieces_keeps_one_drift_inside() -> None:
    st = StampDrift(W, H, T, layer().pitch)
    for op in pieces(0, 0, W, 400, (0, -19), (300, 200, 9, 16)):
        assert st.copy(op) == []
    boxes = st.settle(layer(), {})
    assert boxes == []
    inside = {(tx, ty) for tx in range(W // T) for ty in range(5)}
    # every tile wholly inside the region (but the hole's) shows the copy's drift
    for t in inside - {(4, 3)}:
        assert st.drift.get(t) == (0, -19), (t, st.drift.get(t))


def test_a_long_drag_re_sends_no_stamp_inside_and_stays_within_half_a_pitch() -> None:
    lay = layer()
    st = StampDrift(W, H, T, lay.pitch)
    x, y, moved = 40, 40, (0, 0)
    fb = Framebuffer(W, H)
    for _ in range(60):  # 60 steps of (7, 3): several pitches in all
        fb.take()
        st.copy(CopyOp(x, y, x + 7, y + 3, 256, 192))
        fb.damage_rect(x, y, 7, 192)  # the desktop redraws what the window uncovered
        fb.damage_rect(x, y, 256, 3)
        x, y, moved = x + 7, y + 3, (moved[0] + 7, moved[1] + 3)
        # inside the window no stamp is re-sent (only where a trail left too many parts)
        for b in st.settle(lay, fb.damage):
            assert not (x + T <= b[2] and b[0] < x + 256 - T and y + T <= b[3]
                        and b[1] < y + 192 - T), b
        if x > W - 300:
            break
    inner = ((x + 128) // T, (y + 96) // T)
    assert st.drift[inner] == reduce_drift(moved, lay.pitch)
    for v in st.drift.values():
        shifts = [v] if isinstance(v[0], int) else [s for _, s in v]  # type: ignore[misc]
        assert all(abs(a) <= lay.pitch[0] // 2 and abs(b) <= lay.pitch[1] // 2
                   for a, b in shifts)  # type: ignore[misc]


def test_parts_follow_copies_in_order_not_at_once() -> None:
    """Two copies with one delta, the second reading what the first wrote: sequential, as RFB
    says, so the moved pixels carry two steps of drift."""
    st = StampDrift(W, H, T, layer().pitch)
    st.copy(CopyOp(0, 0, 10, 0, 64, 64))
    st.copy(CopyOp(10, 0, 20, 0, 64, 64))
    st.settle(layer(), {})
    parts = st.drift[(0, 0)]
    assert ((20, 0, 64, 64), (20, 0)) in parts  # type: ignore[operator]


def test_parts_past_the_limit_go_back_to_one_drift() -> None:
    lay = layer()
    st = StampDrift(W, H, T, lay.pitch)
    for i in range(KEEP_PARTS + 4):  # thin strips, each with its own delta
        st.copy(CopyOp(0, 200, 1 + i, 4 * i, 64, 4))
    st.settle(lay, {})
    v = st.drift.get((0, 0), (0, 0))
    assert isinstance(v[0], int)


def test_parts_the_frame_re_sends_take_the_tiles_drift() -> None:
    st = StampDrift(W, H, T, layer().pitch)
    st.copy(CopyOp(0, 10, 0, 0, 64, 50))  # the top 50 rows scroll up by 10
    # the frame redraws the 14 rows below (a new line): they are re-sent anyway
    assert st.settle(layer(), {(0, 0): (0, 50, 64, 64)}) == []
    assert st.drift[(0, 0)] == (0, -10)


def test_stripes_without_ink_join_the_tiles_drift() -> None:
    """Thin stripes of different drift where no stamp falls (at either drift) show the same
    pixels at any drift: the tile keeps one, instead of a part per stripe."""
    lay = layer(spacing=(420, 330))  # sparse stamps
    blank = [(tx, ty) for ty in range(1, H // T - 1) for tx in range(1, W // T - 1)
             if not lay.ink_in(tx * T - 16, ty * T - 16, T + 32, T + 32)]
    assert blank, "the test layer leaves some tile without stamps nearby"
    tx, ty = blank[0]
    x, y = tx * T, ty * T
    st = StampDrift(W, H, T, lay.pitch)
    for i in range(4):  # stripes 4 px high, each copied by its own small delta
        st.copy(CopyOp(x + 1 + i, y + 4 * i + 2, x, y + 4 * i, T, 4))
    assert len({d for _, d in st.parts[(tx, ty)]}) == 5  # four stripes and the rest
    assert st.settle(lay, {}) == []
    v = st.drift.get((tx, ty), (0, 0))
    assert isinstance(v[0], int), v


def random_frames(rng: random.Random
                  ) -> Iterator[tuple[list[CopyOp], dict[tuple[int, int], Box] | None]]:
    """Forty frames of random scrolls, drags, region copies in pieces and stray copies (only
    those the framebuffer keeps), each with the damage to settle it with, or None."""
    for _ in range(40):
        kind = rng.random()
        w, h = rng.randint(1, W), rng.randint(1, H)
        x, y = rng.randint(0, W - w), rng.randint(0, H - h)
        d = (rng.randint(-40, 40), rng.randint(-90, 90))
        if kind < 0.4:  # a region scrolled or dragged, cut around a hole as Xvnc cuts it
            w, h = max(w, 4), max(h, 4)
            x, y = rng.randint(0, W - w), rng.randint(0, H - h)
            hole = (x + rng.randrange(w // 2), y + rng.randrange(h // 2), w // 4, h // 4)
            ops = pieces(x, y, w, h, d, hole)
        else:
            ops = [CopyOp(x, y, rng.randint(0, W - w), rng.randint(0, H - h), w, h)]
        # The framebuffer drops copies that leave the desktop.
        kept = [op for op in ops if min(op.src_x, op.src_y, op.dst_x, op.dst_y) >= 0
                and max(op.src_x, op.dst_x) + op.w <= W and max(op.src_y, op.dst_y) + op.h <= H]
        damage = None
        if rng.random() < 0.5:
            damage = {(tx, ty): (tx * T, ty * T + 10, tx * T + T, ty * T + 30)
                      for tx, ty in rng.sample([(a, b) for a in range(W // T)
                                                for b in range(H // T)], 8)}  # fmt: skip
        yield kept, damage


@pytest.mark.parametrize("seed", range(6))
def test_the_whole_tile_shortcut_equals_cutting_every_tile(seed: int,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """copy()'s shortcut for wholly covered tiles of one source drift leaves exactly the state
    (drifts, parts, moved pixels per drift, boxes to re-send) that cutting every destination
    tile into its sources' pieces leaves, over random scrolls, drags, region copies in pieces
    and stray copies, with frames settled in between. (On the module's source: a compiled
    class calls its own methods directly, past the counting patch. Without the C kernel,
    which takes the same shortcut: tests/display/test_drift_copy.py compares the two.)"""
    source = source_module("stamp_drift")
    monkeypatch.setattr(source, "_DRIFT_COPY", None)
    cls = source.StampDrift
    lay = layer()
    fast, slow = (cls(W, H, T, lay.pitch) for _ in range(2))
    taken: list[object] = []
    one_drift = cls._one_drift
    monkeypatch.setattr(cls, "_one_drift",
                        lambda self, *a: taken.append(one_drift(self, *a)) or taken[-1])
    copies: list[CopyOp] = []  # since the last settle
    for ops, damage in random_frames(random.Random(seed)):
        for op in ops:
            assert fast.copy(op) == slow.copy(op, fast=False)
            assert (fast.drift, fast.parts, fast.moved) == (slow.drift, slow.parts, slow.moved)
            assert list(fast.moved) == list(slow.moved)  # ties in settle go to the first drift
        copies += ops
        if damage is not None:
            assert fast.settle(lay, damage, copies) == slow.settle(lay, damage, copies)
            assert (fast.drift, fast.parts) == (slow.drift, slow.parts)
            copies = []
    assert sum(v is not None for v in taken) >= 10  # the shortcut was taken
    assert None in taken  # and refused where a source tile had parts or another drift


def test_has_ink_answers_as_the_ink_boxes_do() -> None:
    lay, rng = layer(), random.Random(5)
    seen = set()
    for _ in range(3000):
        x, y = rng.randrange(-T, W), rng.randrange(-T, H)
        box = (x, y, x + rng.randint(1, T), y + rng.randint(1, T))
        shift = (rng.randint(-80, 80), rng.randint(-55, 55))
        want = bool(_ink(lay, box, shift))
        assert _has_ink(lay, box, shift) is want, (box, shift)
        seen.add(want)
    assert seen == {True, False}


def test_many_small_copies_of_one_vector_cannot_cut_a_tile_without_bound() -> None:
    """A hostile desktop sends the frame's limit of one-pixel copies of one vector into a tile
    whose parts show several drifts: each copy cuts the parts it touches (up to five pieces
    each), so a tile past MAX_PARTS is re-sent whole at the copies' drift instead of being cut
    further; settling stays quick and leaves at most KEEP_PARTS parts anywhere."""
    lay = layer()
    st = StampDrift(W, H, T, lay.pitch)
    # Frame 1: bands of three drifts across tile (1, 1), kept as parts.
    for i, dy in enumerate((-7, -19, -31)):
        st.copy(CopyOp(64, 64 + 21 * i + dy * -1, 64, 64 + 21 * i, 64, 21))
    st.settle(lay, {})
    assert not isinstance(st.drift[(1, 1)][0], int)  # parts
    # Frame 2: 64 one-pixel copies of one vector, scattered over the tile.
    ops = [CopyOp(64 + (i * 37) % 63 + 1, 64 + (i * 23) % 60 + 2, 64 + (i * 37) % 63,
                  64 + (i * 23) % 60, 1, 1) for i in range(64)]
    for op in ops:
        st.copy(op)
    start = time.process_time()
    boxes = st.settle(lay, {}, ops)
    assert time.process_time() - start < 0.5
    assert (64, 64, 128, 128) in boxes  # re-sent whole
    assert isinstance(st.drift.get((1, 1), (0, 0))[0], int)
    assert all(isinstance(v[0], int) or len(v) <= KEEP_PARTS for v in st.drift.values())
