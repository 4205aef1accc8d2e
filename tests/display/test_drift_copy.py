"""The C drift-map kernel (gateway/display/drift_copy.c): one copy leaves exactly the state
StampDrift.copy's Python walk leaves (drifts, parts, pixels moved per drift in the same order,
tiles re-sent), over random scrolls, drags, region copies in pieces and hostile swarms of tiny
copies, with frames settled in between; copies and states that do not fit are refused before
the map changes; and the whole file under AddressSanitizer and UBSan."""

from __future__ import annotations

import copy as deep
import random
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gateway.display import compiled, stamp_drift
from gateway.display.framebuffer import Box, CopyOp, tiles_in
from tests.display.sanitized import in_use, run_sanitized
from tests.display.sources import source_module
from tests.display.test_stamp_drift import layer

T = 64


def kernel() -> ModuleType:
    return in_use(stamp_drift._DRIFT_COPY, "drift-map kernel")


def frames(rng: random.Random, w: int, h: int, tile: int
           ) -> Iterator[tuple[list[CopyOp], dict[tuple[int, int], Box] | None]]:
    """Frames of copies as a desktop sends them (scrolls and drags by one vector, in pieces;
    stray copies; swarms of one-pixel copies that cut tiles past MAX_PARTS), each with the
    damage to settle it with, or None (more copies before the frame is taken)."""
    for _ in range(60):
        kind = rng.random()
        d = (rng.randint(-w // 3, w // 3), rng.randint(-h // 3, h // 3))
        if kind < 0.45:  # a region moved by d, in bands as Xvnc cuts it
            x0, y0 = rng.randint(0, w - 8), rng.randint(0, h - 8)
            rw, rh = rng.randint(4, w - x0), rng.randint(4, h - y0)
            bands = rng.randint(1, 4)
            ops = [CopyOp(x0 - d[0], y0 + rh * i // bands - d[1], x0, y0 + rh * i // bands, rw,
                          rh * (i + 1) // bands - rh * i // bands) for i in range(bands)]
            ops.sort(key=lambda op: op.dst_y * (1 if d[1] <= 0 else -1))
        elif kind < 0.85:
            rw, rh = rng.randint(1, w), rng.randint(1, h)
            ops = [CopyOp(rng.randint(0, w - rw), rng.randint(0, h - rh), rng.randint(0, w - rw),
                          rng.randint(0, h - rh), rw, rh) for _ in range(rng.randint(1, 3))]
        else:  # a hostile swarm: many tiny copies of small vectors into one area
            cx, cy = rng.randint(0, w - tile), rng.randint(0, h - tile)
            ops = []
            for _ in range(64):
                x, y = cx + rng.randrange(tile), cy + rng.randrange(tile)
                v = (rng.randint(-5, 5), rng.randint(-5, 5))
                ops.append(CopyOp(x - v[0], y - v[1], x, y, rng.randint(1, 3), rng.randint(1, 3)))
        kept = [op for op in ops if min(op.src_x, op.src_y, op.dst_x, op.dst_y) >= 0
                and max(op.src_x, op.dst_x) + op.w <= w and max(op.src_y, op.dst_y) + op.h <= h]
        damage = None
        if rng.random() < 0.6:
            tiles = list(tiles_in(0, 0, w, h, tile))
            damage = {}
            for tx, ty in rng.sample(tiles, min(len(tiles), 6)):
                a, b = tx * tile, ty * tile
                damage[(tx, ty)] = (a, b + 3, min(a + tile, w), min(b + tile // 2, h))
        yield kept, damage


@pytest.mark.parametrize(("size", "seed"), [((640, 480, T), s) for s in range(5)]
                         + [((203, 131, 16), s) for s in range(5)])
def test_the_kernel_leaves_the_state_the_python_walk_leaves(
        size: tuple[int, int, int], seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two maps from the module's source, one copying through the kernel and one through the
    Python walk, compared after every copy and every settle."""
    k = kernel()
    source = source_module("stamp_drift")
    w, h, tile = size
    lay = layer()
    ours, ref = (source.StampDrift(w, h, tile, lay.pitch) for _ in range(2))
    many: list[int] = []

    def counted(*args: Any) -> Any:
        out = k.copy(*args)
        many.append(len(out))
        return out

    copies: list[CopyOp] = []
    rng = random.Random(seed)
    for ops, damage in frames(rng, w, h, tile):
        for op in ops:
            monkeypatch.setattr(source, "_DRIFT_COPY", type("Spy", (), {"copy": counted}))
            got = ours.copy(op)
            monkeypatch.setattr(source, "_DRIFT_COPY", None)
            assert got == ref.copy(op), op
            assert (ours.drift, ours.parts, ours.moved) == (ref.drift, ref.parts, ref.moved), op
            assert list(ours.moved) == list(ref.moved)  # ties in settle go to the first drift
        copies += ops
        if damage is not None:
            assert ours.settle(lay, damage, copies) == ref.settle(lay, damage, copies)
            assert (ours.drift, ours.parts) == (ref.drift, ref.parts)
            copies = []
    assert len(many) > 100
    if tile == T:  # a 64-pixel tile holds enough one-pixel pieces to pass MAX_PARTS
        assert any(many), "no copy cut a tile past MAX_PARTS"
    assert any(isinstance(v[0], tuple) for v in ref.drift.values()) or ref.parts  # parts kept


def test_settled_parts_and_drifts_are_read_as_the_python_reads_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A state with every kind of tile: one drift, settled parts (a tuple), this frame's parts
    (a list over a settled drift), and none; a copy over all of them, in each direction."""
    k = kernel()
    source = source_module("stamp_drift")
    lay = layer()
    for d in ((0, 7), (13, -40), (-64, 0), (5, 5)):
        maps = []
        for handle in (k, None):
            monkeypatch.setattr(source, "_DRIFT_COPY", handle)
            st = source.StampDrift(640, 480, T, lay.pitch)
            st.drift.update({(1, 1): (3, -4), (2, 1): (((128, 64, 150, 128), (1, 1)),
                                                       ((150, 64, 192, 128), (2, -2))),
                             (1, 2): (9, 9)})
            st.parts[(1, 2)] = [((64, 128, 128, 140), (0, 5)), ((64, 140, 128, 192), (9, 9))]
            redo = st.copy(CopyOp(80, 70, 80 + d[0], 70 + d[1], 170, 140))
            maps.append((redo, st.drift, st.parts, list(st.moved.items())))
        assert maps[0] == maps[1], d


@pytest.mark.parametrize("args", [
    (640, 480, T, 160, 110, 0, 0, 600, 0, 41, 10),  # past the right edge
    (640, 480, T, 160, 110, 0, 475, 0, 0, 10, 10),  # the source past the bottom
    (640, 480, T, 160, 110, -1, 0, 0, 0, 10, 10),
    (640, 480, T, 160, 110, 0, 0, 0, 0, -1, 10),
    (640, 480, 0, 160, 110, 0, 0, 0, 0, 10, 10),  # no tile
    (640, 480, T, 0, 110, 0, 0, 0, 0, 10, 10),  # no pitch: drifts would not be reduced
    (2**21, 480, T, 160, 110, 0, 0, 0, 0, 10, 10),
    (640, 480, T, 160, 110, 2**62, 0, 0, 0, 10, 10),
])
def test_copies_that_do_not_fit_are_refused(args: tuple[int, ...]) -> None:
    k = kernel()
    drift: dict[Any, Any] = {(0, 0): (3, 4)}
    with pytest.raises(ValueError, match="does not fit"):
        k.copy({}, drift, {}, *args, 24)
    assert drift == {(0, 0): (3, 4)}
    with pytest.raises(OverflowError):
        k.copy({}, drift, {}, 640, 480, T, 160, 110, 0, 0, 0, 0, 2**70, 10, 24)


@pytest.mark.parametrize(("parts", "drift", "error"), [
    ({(0, 0): (((0, 0, 64, 64), (1, 1)),)}, {}, TypeError),  # parts must be a list
    ({(0, 0): [((0, 0, 64), (1, 1))]}, {}, TypeError),
    ({(0, 0): [((0, 0, 64, 64), (1, "1"))]}, {}, TypeError),
    ({(0, 0): [((0, 0, 64, 64), (1, 2**31))]}, {}, ValueError),
    ({}, {(0, 0): (1, 2, 3)}, TypeError),
    ({}, {(0, 0): [1, 2]}, TypeError),
    ({}, {(0, 0): (2**40, 0)}, ValueError),
    ({}, {(0, 0): ((0, 0, 64, 64), 7)}, TypeError),
])
def test_a_state_the_python_never_makes_is_refused_before_anything_changes(
        parts: dict[Any, Any], drift: dict[Any, Any], error: type[Exception]) -> None:
    k = kernel()
    before = deep.deepcopy((parts, drift))
    moved = {(5, 5): 1}
    with pytest.raises(error):
        k.copy(parts, drift, moved, 640, 480, T, 160, 110, 0, 0, 5, 3, 100, 100, 24)
    assert (parts, drift) == before and moved == {(5, 5): 1}


def test_the_gateways_map_copies_through_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway's own StampDrift (compiled, where built) calls the kernel."""
    k = kernel()
    calls: list[int] = []

    class Spy:
        @staticmethod
        def copy(*args: object) -> object:
            calls.append(1)
            return k.copy(*args)

    monkeypatch.setattr(stamp_drift, "_DRIFT_COPY", Spy)
    st = stamp_drift.StampDrift(640, 480, T, layer().pitch)
    st.copy(CopyOp(0, 20, 0, 0, 640, 400))
    assert calls == [1] and st.drift and st.moved
    assert compiled.status()["drift_copy"] is True


_DRIVER = textwrap.dedent("""
    rng = random.Random(29)

    def coord(n):  # mostly in the desktop, sometimes at or past the kernel's bounds
        if rng.random() < 0.995:
            return rng.randint(-3, n + 3)
        return rng.choice([2**30, -2**30, 2**31])

    def part(w, h):
        x0, y0 = coord(w), coord(h)
        box = (x0, y0, x0 + rng.randint(0, 70), y0 + rng.randint(0, 70))
        if rng.random() < 0.002:
            box = box[:3]
        dy = rng.randint(-60, 60) if rng.random() < 0.998 else rng.choice([2**31, "x"])
        return (box, (rng.randint(-90, 90), dy))

    calls = refused = 0
    for _ in range(3000):
        w, h, tile = rng.choice([(640, 480, 64), (97, 61, 16), (1, 1, 1), (300, 7, 64)])
        cols, rows = -(-w // tile), -(-h // tile)
        parts, drift, moved = {}, {}, {}
        for _ in range(rng.randint(0, 12)):
            t = (rng.randrange(cols), rng.randrange(rows))
            kind = rng.random()
            if kind < 0.4:
                parts[t] = [part(w, h) for _ in range(rng.randint(0, 30))]
            elif kind < 0.7:
                drift[t] = tuple(part(w, h) for _ in range(rng.randint(0, 9)))
            else:
                drift[t] = (rng.randint(-200, 200), rng.randint(-200, 200))
        cw, ch = rng.randint(0, w), rng.randint(0, h)
        args = [rng.randint(0, w - cw), rng.randint(0, h - ch), rng.randint(0, w - cw),
                rng.randint(0, h - ch), cw, ch]
        if rng.random() < 0.2:
            args[rng.randrange(6)] += rng.choice([-1, 1, 2**20, -2**40])
        pitch = rng.choice([(160, 110), (2, 1), (1, 1), (0, 110)])
        try:
            k.copy(parts, drift, moved, w, h, tile, *pitch, *args, rng.choice([0, 1, 24]))
            calls += 1
        except (ValueError, TypeError):
            refused += 1
    print("calls", calls, "refused", refused)
""")


def test_the_kernel_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    words = run_sanitized("drift_copy", _DRIVER, tmp_path).split()
    calls, refused = int(words[1]), int(words[3])
    assert calls > 1000 and refused > 500  # many copies change the map, many are refused
