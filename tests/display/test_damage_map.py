"""The C damage-map kernel (gateway/display/damage_map.c): the framebuffer's damage (boxes per
tile, in the same order) and touched tiles are what damage_rect's Python leaves, over random
blits, fills, copies and rectangles anywhere, also off the desktop; rectangles and boxes out of
range are refused before the tile changes; and the whole file under AddressSanitizer and UBSan."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gateway.display import compiled, framebuffer
from tests.display.sanitized import in_use, run_sanitized
from tests.display.sources import source_module

W, H = 203, 131  # odd sizes: tiles are cut at both edges


def kernel() -> ModuleType:
    return in_use(framebuffer._DAMAGE_MAP, "damage-map kernel")


@pytest.mark.parametrize(("tile", "seed"), [(16, 0), (16, 1), (64, 2), (64, 3), (7, 4)])
def test_the_kernel_leaves_the_damage_the_python_leaves(tile: int, seed: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The framebuffer's source run twice on the same random drawing, once marking damage
    through the kernel and once through Python, compared after every frame."""
    k = kernel()
    source = source_module("framebuffer")
    runs = []
    for handle in (k, None):
        monkeypatch.setattr(source, "_DAMAGE_MAP", handle)
        rng, fb, frames = random.Random(seed), source.Framebuffer(W, H, tile), []
        for _ in range(40):
            for _ in range(rng.randint(1, 12)):
                w, h = rng.randint(-2, 90), rng.randint(-2, 60)
                x, y = rng.randint(-40, W), rng.randint(-40, H)
                kind = rng.random()
                if kind < 0.3:
                    fb.damage_rect(x, y, w, h)  # anywhere, as the watermark's ink may lie
                elif kind < 0.6 and w > 0 and h > 0:
                    fb.blit(x, y, w, h, bytes(w * h * 4))
                elif kind < 0.8:
                    fb.fill(x, y, w, h, b"\1\2\3\0")
                else:
                    fb.copy(rng.randint(0, W), rng.randint(0, H), x, y, w, h)
            touched = fb.touched
            copies, damage, _ = fb.take()
            frames.append((list(damage.items()), touched, copies))
        runs.append(frames)
    assert runs[0] == runs[1]
    assert any(len(d) > 3 for d, _, _ in runs[0])


@pytest.mark.parametrize("args", [
    (0, 0, 0, 10, 10), (2**21, 0, 0, 10, 10),  # tiles
    (64, -2**31, 0, 10, 10), (64, 0, 2**31, 10, 10), (64, 0, 0, 2**31, 10),  # coordinates
])
def test_rectangles_out_of_range_are_refused(args: tuple[int, ...]) -> None:
    k = kernel()
    damage: dict[Any, Any] = {}
    touched: set[Any] = set()
    with pytest.raises(ValueError, match="outside the damage map's range"):
        k.damage_rect(damage, touched, *args)
    with pytest.raises(OverflowError):
        k.damage_rect(damage, touched, 64, 2**70, 0, 1, 1)
    assert not damage and not touched


@pytest.mark.parametrize(("old", "error"), [
    ((1, 2, 3), TypeError), ([1, 2, 3, 4], TypeError), ((1, 2, "3", 4), TypeError),
    ((1, 2, 3, 2**40), ValueError),
])
def test_a_box_the_python_never_makes_is_refused(old: object, error: type[Exception]) -> None:
    k = kernel()
    damage: dict[Any, Any] = {(0, 0): old}
    touched: set[Any] = set()
    with pytest.raises(error):
        k.damage_rect(damage, touched, 64, 5, 5, 10, 10)
    assert damage == {(0, 0): old} and not touched


def test_nothing_happens_for_an_empty_rectangle() -> None:
    k = kernel()
    damage: dict[Any, Any] = {}
    touched: set[Any] = set()
    for w, h in ((0, 5), (5, 0), (-3, 5)):
        k.damage_rect(damage, touched, 64, 5, 5, w, h)
    assert not damage and not touched


def test_the_installed_framebuffer_marks_damage_through_the_kernel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    k = kernel()
    calls: list[tuple[int, ...]] = []

    class Spy:
        @staticmethod
        def damage_rect(*args: Any) -> None:
            calls.append(args[2:])
            k.damage_rect(*args)

    fb = framebuffer.Framebuffer(W, H)
    fb.take()
    monkeypatch.setattr(framebuffer, "_DAMAGE_MAP", Spy)
    fb.blit(3, 4, 100, 2, b"\0" * 100 * 2 * 4)
    assert calls == [(64, 3, 4, 100, 2)]
    assert fb.take()[1] == {(0, 0): (3, 4, 64, 6), (1, 0): (64, 4, 103, 6)}
    assert compiled.status()["damage_map"] is True


_DRIVER = textwrap.dedent("""
    rng = random.Random(23)
    calls = refused = 0

    def reference(damage, touched, t, x, y, w, h):  # Framebuffer.damage_rect's Python
        for ty in range(y // t, (y + h - 1) // t + 1):
            for tx in range(x // t, (x + w - 1) // t + 1):
                part = (max(x, tx * t), max(y, ty * t), min(x + w, tx * t + t),
                        min(y + h, ty * t + t))
                old = damage.get((tx, ty), part)
                damage[(tx, ty)] = (min(old[0], part[0]), min(old[1], part[1]),
                                    max(old[2], part[2]), max(old[3], part[3]))
                touched.add((tx, ty))
    for _ in range(3000):
        damage, touched = {}, set()
        for _ in range(rng.randint(0, 5)):
            t = (rng.randint(-3, 9), rng.randint(-3, 9))
            damage[t] = rng.choice([(1, 2, 3, 4), (0, 0, 64, 64), (5, 5, 5, 5), (1, 2),
                                    (1, 2, 3, 2**40), [1, 2, 3, 4], (-70, -3, 900, 8)])
        tile = rng.choice([1, 7, 64, 0, 2**21])
        x, y = rng.randint(-300, 900), rng.randint(-300, 900)
        w, h = rng.randint(-5, 700), rng.randint(-5, 500)
        if tile == 1:  # a tile a pixel: keep the work small
            w, h = w % 20, h % 20
        if rng.random() < 0.05:
            x = rng.choice([2**30, -2**30, 2**31])
        want = (dict(damage), set(touched))
        try:
            k.damage_rect(damage, touched, tile, x, y, w, h)
            calls += 1
        except (ValueError, TypeError):
            refused += 1
            continue
        if w > 0 and h > 0:
            reference(*want, tile, x, y, w, h)
        # Read back every value: a box freed too early shows here.
        assert list(damage.items()) == list(want[0].items()) and touched == want[1]
    print("calls", calls, "refused", refused)
""")


def test_the_kernel_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    words = run_sanitized("damage_map", _DRIVER, tmp_path).split()
    calls, refused = int(words[1]), int(words[3])
    assert calls > 1000 and refused > 500
