"""The display path's vectorised and cached parts (issue 11 part D) against plain references.

Each fast path replaced a simple loop (crop + count per tile column, a dict of every row per
band, one copy per row, alpha crops per stamp and tile); these tests keep the simple loop as the
reference and check the fast path gives exactly its answer on varied inputs.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC
from itertools import pairwise

import numpy as np
import pytest
from PIL import Image

from gateway.display import encoder, palette, scroll
from gateway.display.framebuffer import Framebuffer
from gateway.display.watermark import Watermark, _tiles

# --- encoder: classification of a region's tile columns -------------------------------------


def _columns_image(rng: random.Random, kinds: list[str], w: int, h: int) -> Image.Image:
    img = Image.new("RGB", (w, h))
    x = 0
    for kind in kinds:
        cw = min(64, w - x)
        if cw <= 0:
            break
        if kind == "solid":
            img.paste(tuple(rng.randrange(256) for _ in range(3)), (x, 0, x + cw, h))
        elif kind == "text":
            col = Image.new("RGB", (cw, h), (255, 255, 255))
            for _ in range(rng.randint(1, 30)):
                col.putpixel((rng.randrange(cw), rng.randrange(h)), (rng.randrange(4) * 60, 0, 0))
            img.paste(col, (x, 0))
        else:  # photo: noise
            img.paste(Image.effect_noise((cw, h), 60).convert("RGB"), (x, 0))
        x += cw
    return img


@pytest.mark.parametrize("seed", range(12))
def test_column_kinds_equal_classifying_each_column(seed: int) -> None:
    rng = random.Random(seed)
    x0 = rng.choice([0, 64, 70, 130])  # regions need not start on the grid
    w, h = rng.randint(1, 900), rng.randint(1, 64)
    kinds = [rng.choice(["solid", "text", "text", "photo" if seed % 3 == 0 else "solid"])
             for _ in range(16)]  # fmt: skip
    img = _columns_image(rng, kinds, w, h)
    cuts = [x0, *range((x0 // 64 + 1) * 64, x0 + w, 64), x0 + w]
    expected = [encoder.classify(img.crop((c0 - x0, 0, c1 - x0, h))) for c0, c1 in pairwise(cuts)]
    assert encoder._kinds(img.tobytes("raw", "RGBX"), w, h, x0, cuts) == expected


# --- scroll detection's vote ----------------------------------------------------------------


def _reference_vote(hashes: scroll.RowHashes, new: np.ndarray, damage: scroll.Damage
                    ) -> int | None:
    """The vote as it was written before numpy: a dict of rows per hash, a Counter of shifts."""
    rows: dict[int, set[int]] = {}
    for (col, _row), box in damage.items():
        rows.setdefault(col // scroll.BAND_TILES, set()).update(range(box[1], box[3]))
    votes: Counter[int] = Counter()
    for band in sorted(rows, key=lambda b: -len(rows[b]))[: scroll.VOTING_BANDS]:
        where: dict[int, list[int]] = {}
        for y, h in enumerate(hashes.table[band].tolist()):
            where.setdefault(h, []).append(y)
        for y in sorted(rows[band]):
            srcs = where.get(int(new[band][y]), ())
            if len(srcs) <= scroll.MAX_REPEATS:
                votes.update(s - y for s in srcs if s != y and abs(s - y) <= scroll.MAX_SHIFT)
    if not votes:
        return None
    dy, n = votes.most_common(1)[0]
    return dy if n >= scroll.MIN_VOTES else None


@pytest.mark.parametrize("seed", range(20))
def test_numpy_vote_equals_the_counter_vote(seed: int) -> None:
    rng = random.Random(seed)
    height, bands = 480, 3
    hashes = scroll.RowHashes()
    alphabet = rng.choice([8, 40, 2**32])  # few distinct rows (blank-ish) .. all unique
    hashes.table = np.array([[rng.randrange(alphabet) for _ in range(height)]
                             for _ in range(bands)], np.uint32)  # fmt: skip
    new = hashes.table.copy()
    for band in range(bands):
        shift = rng.choice([0, 16, -32, 48])
        old = hashes.table[band].tolist()
        new[band] = [old[(y + shift) % height] if rng.random() < 0.8
                     else rng.randrange(alphabet) for y in range(height)]  # fmt: skip
    damage = {}
    for _ in range(rng.randint(1, 30)):
        col, row = rng.randrange(bands * scroll.BAND_TILES), rng.randrange(height // 64)
        y0 = row * 64 + rng.randrange(32)
        damage[(col, row)] = (col * 64, y0, col * 64 + 64, min(height, row * 64 + 64))
    assert hashes._vote(new, damage) == _reference_vote(hashes, new, damage)


@pytest.mark.parametrize("seed", range(10))
def test_damaged_rows_per_band_equal_the_union_of_box_rows(seed: int) -> None:
    rng = random.Random(seed)
    damage = {}
    for _ in range(rng.randint(1, 60)):
        col, row = rng.randrange(30), rng.randrange(16)
        y0 = row * 64 + rng.randrange(64)
        damage[(col, row)] = (col * 64, y0, col * 64 + 64, rng.randint(y0 + 1, row * 64 + 64))
    got = scroll._damaged_rows(damage, 16 * 64)
    expected: dict[int, set[int]] = {}
    for (col, _row), box in damage.items():
        expected.setdefault(col // scroll.BAND_TILES, set()).update(range(box[1], box[3]))
    assert list(got) == list(expected)  # bands in the order the map first names them
    assert {b: rows.tolist() for b, rows in got.items()} == \
        {b: sorted(rows) for b, rows in expected.items()}


# --- scroll detection's row hashes ----------------------------------------------------------


def _reference_row_hash(row: bytes, coeffs: list[int]) -> int:
    """Vector multiply-shift written out: Σ a_i·x_i over the row's little-endian 32-bit words,
    modulo 2^64, top 32 bits."""
    words = [int.from_bytes(row[i : i + 4], "little") for i in range(0, len(row), 4)]
    return sum(a * x for a, x in zip(coeffs, words, strict=False)) % 2**64 >> 32


@pytest.mark.parametrize("seed", range(8))
def test_band_hashes_equal_the_multiply_shift_sum_row_by_row(seed: int) -> None:
    rng = random.Random(seed)
    fb = Framebuffer(rng.choice([97, 300, 640]), rng.randint(1, 70))
    fb.blit(0, 0, fb.width, fb.height, rng.randbytes(fb.width * fb.height * 4))
    coeffs = np.array([rng.getrandbits(64) for _ in range(256)], np.uint64)
    x0 = rng.randrange(0, fb.width) * 4
    x1 = min(fb.stride, x0 + rng.randint(1, 256) * 4)
    y0 = rng.randrange(fb.height)
    got = scroll.band_hashes(fb.array[y0:, x0:x1], coeffs)  # a strided slice, as detect() hashes
    assert got.tolist() == [
        _reference_row_hash(bytes(fb.pixels[y * fb.stride + x0 : y * fb.stride + x1]),
                            coeffs.tolist()) for y in range(y0, fb.height)]  # fmt: skip


def test_rows_that_differ_in_one_high_bit_hash_differently() -> None:
    """The weakness of a plain 64-bit multiply-sum (two rows differing in one pixel's top bits
    collide for 1 key in 2^9) is not this hash's: every row differing in one bit of one word,
    any word and bit, gets a hash different from the original, for several keys."""
    rng = random.Random(7)
    base = bytearray(rng.randbytes(1024))
    rows = [bytes(base)]
    for word in range(0, 256, 5):
        for bit in (7, 15, 23, 30, 31):
            row = bytearray(base)
            row[word * 4 + bit // 8] ^= 1 << bit % 8
            rows.append(bytes(row))
    block = np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), 1024)
    for _ in range(4):
        coeffs = np.array([rng.getrandbits(64) for _ in range(256)], np.uint64)
        hashes = scroll.band_hashes(block, coeffs).tolist()
        assert len(set(hashes)) == len(hashes)


# --- framebuffer drawing ---------------------------------------------------------------------


def test_framebuffer_blit_fill_copy_match_a_row_by_row_reference() -> None:
    rng = random.Random(3)
    w, h = 97, 61
    fb = Framebuffer(w, h)
    ref = bytearray(w * h * 4)
    for _ in range(300):
        op = rng.choice(["blit", "fill", "copy"])
        x, y = rng.randrange(-10, w), rng.randrange(-10, h)
        rw, rh = rng.randint(1, 40), rng.randint(1, 40)
        if op == "blit":
            data = bytes(rng.randrange(256) for _ in range(rw * rh * 4))
            fb.blit(x, y, rw, rh, data)
            for r in range(rh):
                for c in range(rw):
                    if 0 <= x + c < w and 0 <= y + r < h:
                        i = ((y + r) * w + x + c) * 4
                        ref[i : i + 4] = data[(r * rw + c) * 4 : (r * rw + c) * 4 + 4]
        elif op == "fill":
            px = bytes(rng.randrange(256) for _ in range(4))
            fb.fill(x, y, rw, rh, px)
            for r in range(max(0, y), min(h, y + rh)):
                for c in range(max(0, x), min(w, x + rw)):
                    ref[(r * w + c) * 4 : (r * w + c) * 4 + 4] = px
        else:  # overlapping copies included; out-of-bounds ones are ignored by both
            sx, sy = rng.randrange(w), rng.randrange(h)
            x, y = max(0, x), max(0, y)
            fb.copy(sx, sy, x, y, rw, rh)
            if sx + rw <= w and x + rw <= w and sy + rh <= h and y + rh <= h:
                block = [bytes(ref[((sy + r) * w + sx) * 4 : ((sy + r) * w + sx + rw) * 4])
                         for r in range(rh)]  # fmt: skip
                for r in range(rh):
                    ref[((y + r) * w + x) * 4 : ((y + r) * w + x + rw) * 4] = block[r]
        assert bytes(fb.pixels) == bytes(ref), op
    assert fb.read(5, 7, 20, 9) == b"".join(
        bytes(ref[((7 + r) * w + 5) * 4 : ((7 + r) * w + 25) * 4]) for r in range(9))


def _reference_damage(t: int, rects: list[tuple[int, int, int, int]]
                      ) -> dict[tuple[int, int], tuple[int, int, int, int]]:
    """Per-tile bounding boxes of the rectangles, pixel by pixel."""
    boxes: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    for x, y, w, h in rects:
        for py in range(y, y + h):
            for px in range(x, x + w):
                key = (px // t, py // t)
                b = boxes.get(key, (px, py, px + 1, py + 1))
                boxes[key] = (min(b[0], px), min(b[1], py), max(b[2], px + 1), max(b[3], py + 1))
    return boxes


@pytest.mark.parametrize("seed", range(10))
def test_damage_boxes_equal_the_pixelwise_bounding_boxes(seed: int) -> None:
    rng = random.Random(seed)
    t = rng.choice([16, 64])
    fb = Framebuffer(rng.randint(40, 300), rng.randint(40, 200), tile=t)
    fb.take()
    rects = []
    for _ in range(rng.randint(1, 12)):
        x, y = rng.randrange(fb.width), rng.randrange(fb.height)
        w, h = rng.randint(1, fb.width - x), rng.randint(1, min(50, fb.height - y))
        rects.append((x, y, w, h))
        if rng.random() < 0.5:
            fb.blit(x, y, w, h, rng.randbytes(w * h * 4))
        else:
            fb.damage_rect(x, y, w, h)
    assert fb.damage == _reference_damage(t, rects)
    assert fb.touched == set(fb.damage)


@pytest.mark.parametrize("seed", range(6))
def test_damage_past_the_edges_is_clipped_to_the_framebuffer(seed: int) -> None:
    """The stamps' boxes of a layer made before a resize may reach past the new edges: only
    the part inside is damaged, and no tile outside the grid (nor one of the next row, which
    a column past the right edge would name) appears."""
    rng = random.Random(seed)
    t = rng.choice([16, 64])
    fb = Framebuffer(rng.randint(40, 300), rng.randint(40, 200), tile=t)
    fb.take()
    rects, inside = [], []
    for _ in range(rng.randint(1, 12)):
        x, y = rng.randint(-80, fb.width + 20), rng.randint(-80, fb.height + 20)
        w, h = rng.randint(0, 200), rng.randint(0, 200)
        rects.append((x, y, w, h))
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, fb.width), min(y + h, fb.height)
        if x0 < x1 and y0 < y1:
            inside.append((x0, y0, x1 - x0, y1 - y0))
        fb.damage_rect(x, y, w, h)
    assert fb.damage == _reference_damage(t, inside)
    assert fb.touched == set(fb.damage)
    assert all(0 <= tx < fb.cols and 0 <= ty < fb.rows for tx, ty in fb.damage)


# --- watermark ink boxes ---------------------------------------------------------------------


def _reference_ink(wm: Watermark, width: int, height: int, tile: int, now: float, shift: int
                   ) -> dict[tuple[int, int], tuple[int, int, int, int]]:
    """Ink boxes computed stamp by stamp, tile by tile, from the stamp's alpha (no cache)."""
    layer = wm.layer(width, height, tile, now, shift)
    stamp, (sx, sy) = layer.stamp, layer.pitch
    alpha = stamp.getchannel("A")
    boxes: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    for x, y in layer.origins:
        for tx, ty in _tiles(x, y, stamp.width, stamp.height, width, height, tile, sx, sy):
            box = (max(tx * tile, x) - x, max(ty * tile, y) - y,
                   min((tx + 1) * tile, x + stamp.width) - x,
                   min((ty + 1) * tile, y + stamp.height) - y)  # fmt: skip
            b = alpha.crop(box).getbbox()
            if b:
                b = (b[0] + box[0] + x, b[1] + box[1] + y, b[2] + box[0] + x, b[3] + box[1] + y)
                old = boxes.get((tx, ty))
                boxes[(tx, ty)] = b if old is None else (
                    min(old[0], b[0]), min(old[1], b[1]), max(old[2], b[2]), max(old[3], b[3]))
    return boxes


@pytest.mark.parametrize("seed", range(6))
def test_cached_ink_boxes_equal_per_stamp_crops(seed: int) -> None:
    rng = random.Random(seed)
    wm = Watermark("{user} {time}", {"user": f"t{seed:04d} 山田"}, opacity=0.12, tz=UTC,
                   move_every=rng.choice([0, 30]))  # fmt: skip
    width, height = rng.choice([(1920, 1080), (800, 600), (333, 200)])
    for _ in range(4):  # shifted grids reuse the cached phases
        now, shift = 1_796_083_230 + rng.randrange(600), rng.randrange(-700, 700)
        layer = wm.layer(width, height, 64, now, shift)
        assert layer.ink_boxes == _reference_ink(Watermark(
            wm.template, wm.fields, opacity=0.12, tz=UTC, move_every=wm.move_every),
            width, height, 64, now, shift)  # fmt: skip


# --- palette tiles: each pixel's slot ---------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_palette_slot_table_gives_the_binary_search_slots(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([1, 2, 5, 16, 17, 100, 256])
    keys = rng.sample(range(2**24), n) if seed % 2 else \
        [rng.randrange(8) << 16 | rng.randrange(256) for _ in range(n)]  # clustered keys
    colors = [(k >> 16, k >> 8 & 0xFF, k & 0xFF) for k in keys]
    w, h = rng.randint(1, 300), rng.randint(1, 40)
    img = Image.new("RGB", (w, h))
    img.putdata([rng.choice(colors) for _ in range(w * h)])
    found = img.getcolors(256)
    assert found is not None
    sorted_keys = np.array(sorted((r << 16) | (g << 8) | b for _, (r, g, b) in found), np.uint32)
    lookup = palette.slot_table(sorted_keys)
    assert lookup is not None
    mul, table = lookup
    pixels = np.frombuffer(img.tobytes("raw", "BGRX"), np.uint32).reshape(h, w)
    fast = table[(pixels * mul) >> np.uint32(32 - palette.HASH_BITS)]
    assert (fast == palette.search_index(img, sorted_keys)).all()
    assert (palette.decode(w, h, palette.encode(img, 256) or b"") == np.asarray(img)).all()
