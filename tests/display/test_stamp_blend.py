"""The C stamp-blend kernel (gateway/display/stamp_blend.c): the bytes Pillow gives (frombytes
from BGRX, each stamp piece pasted with itself as the mask, tobytes as RGBX) for random regions,
stamps and pieces, and for the gateway's own watermark under every kind of drift; pieces and sizes
that do not fit are refused before anything is written; the encoder blends through it; and the
whole file under AddressSanitizer and UBSan."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from gateway.display import compiled, encoder
from gateway.display.encoder import RegionSnapshot, to_rgb, to_rgbx
from gateway.display.stamp_places import Place, paste, places_at
from gateway.display.watermark import Watermark, WatermarkLayer
from tests.display.sanitized import in_use, run_sanitized


def kernel() -> ModuleType:
    return in_use(encoder._stamp_blend, "stamp-blend kernel")


def pillow(bgrx: bytes, w: int, h: int, stamp: Image.Image, pieces: list[Place]) -> bytes:
    """The reference: what the encoder did before the kernel."""
    img = Image.frombytes("RGB", (w, h), bgrx, "raw", "BGRX")
    core, dest = stamp.im, img.im
    for sx0, sy0, sx1, sy1, ax, ay in pieces:
        part = core.crop((sx0, sy0, sx1, sy1))
        dest.paste(part, (ax, ay, ax + sx1 - sx0, ay + sy1 - sy0), part)
    return img.tobytes("raw", "RGBX")


def random_stamp(rng: np.random.Generator, sw: int, sh: int) -> Image.Image:
    """Every alpha from 0 to 255 (the watermark's own stamp has two inks at one alpha)."""
    px = rng.integers(0, 256, (sh, sw, 4), np.uint8)
    px[..., 3][rng.random((sh, sw)) < 0.3] = 0
    px[..., 3][rng.random((sh, sw)) < 0.1] = 255
    return Image.fromarray(px, "RGBA")


@pytest.mark.parametrize("seed", range(8))
def test_the_kernel_gives_pillows_bytes(seed: int) -> None:
    k = kernel()
    rng = np.random.default_rng(seed)
    for _ in range(60):
        w, h = int(rng.integers(1, 300)), int(rng.integers(1, 70))
        sw, sh = int(rng.integers(1, 90)), int(rng.integers(1, 40))
        stamp = random_stamp(rng, sw, sh)
        bgrx = rng.integers(0, 256, w * h * 4, np.uint8).tobytes()  # X too: it is not read
        pieces: list[Place] = []
        for _ in range(int(rng.integers(0, 8))):
            sx0, sy0 = int(rng.integers(0, sw)), int(rng.integers(0, sh))
            cw = int(rng.integers(1, min(sw - sx0, w) + 1))
            ch = int(rng.integers(1, min(sh - sy0, h) + 1))
            ax, ay = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            pieces.append((sx0, sy0, sx0 + cw, sy0 + ch, ax, ay))  # may overlap: in order
        got = k.rgbx(bgrx, w, h, stamp.tobytes(), sw, sh, pieces)
        assert got == pillow(bgrx, w, h, stamp, pieces), (w, h, sw, sh, pieces)


def test_the_regions_of_a_frame_equal_pillows_under_every_drift(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder's own pieces: the default watermark's layer, a region of several tile
    columns unmoved, moved as a whole, and with columns moved apart and cut into parts."""
    kernel()
    rng = np.random.default_rng(7)
    wm = Watermark(fields={"user_id": "t-0042", "name": "佐藤 健", "school": "南中学校"})
    layer = wm.layer(1920, 1080, 64, 0.0)
    assert layer.origins and layer.ink
    tx, ty = next(iter(sorted(layer.ink)))
    x, y = tx * 64 - 64 if tx else 0, ty * 64
    w, h = 64 * 5 + 17, 64
    bgrx = rng.integers(0, 256, w * h * 4, np.uint8).tobytes()
    snap = RegionSnapshot(x, y, w, h, bgrx, 64)
    c0 = x // 64
    drifts: list[encoder.Drift | None] = [
        None, {}, {(c, ty): (5, -3) for c in range(c0, c0 + 6)},
        {(c0 + 1, ty): (7, 0), (c0 + 3, ty): (-20, 11),
         (c0 + 2, ty): (((x + 128, y, x + 150, y + 64), (3, 3)),
                        ((x + 150, y, x + 192, y + 64), (0, -40)))},
    ]
    blended = set()
    for drift in drifts:
        got = to_rgbx(snap, layer, drift)
        monkeypatch.setattr(encoder, "_stamp_blend", None)
        assert got == to_rgbx(snap, layer, drift) == to_rgb(snap, layer, drift).tobytes(
            "raw", "RGBX")
        monkeypatch.undo()
        blended.add(got)
    plain = to_rgbx(snap, None)
    assert plain == Image.frombytes("RGB", (w, h), bgrx, "raw", "BGRX").tobytes("raw", "RGBX")
    assert plain not in blended and len(blended) == 3  # None and {} place the stamps alike


@pytest.mark.parametrize("seed", range(6))
def test_columns_at_one_drift_blend_as_each_column_apart(seed: int) -> None:
    """``_places`` gives neighbouring tile columns at one drift one call (part AJ): a stamp
    across their edge becomes one piece instead of two. The pixels must be those of each
    column placed apart, as before, with Pillow's paste as the judge."""
    rng = np.random.default_rng(seed)
    wm = Watermark(fields={"user_id": f"t-{seed:04d}", "name": "佐藤 健", "school": "南中学校"})
    layer = wm.layer(1920, 1080, 64, 0.0)
    rows = sorted({t[1] for t in layer.ink})
    ty = rows[int(rng.integers(0, len(rows)))]
    x, w, h = int(rng.integers(0, 64)), 64 * 12 + int(rng.integers(1, 64)), 64
    y = ty * 64
    snap = RegionSnapshot(x, y, w, h, rng.integers(0, 256, w * h * 4, np.uint8).tobytes(), 64)
    cols = range(x // 64, (x + w - 1) // 64 + 1)
    vectors = [(0, 0), (5, -3), (-20, 11)]
    drift: encoder.Drift = {}
    for col in cols:  # runs of equal drift, and now and then a column cut into parts
        pick = int(rng.integers(0, 8))
        if pick < 6:
            drift[(col, ty)] = vectors[pick % 3] if pick < 3 else vectors[0]
        elif pick == 6:
            drift[(col, ty)] = (((col * 64, y, col * 64 + 20, y + 64), (3, 3)),
                                ((col * 64 + 20, y, col * 64 + 64, y + 64), (0, -40)))
    apart: list[Place] = []
    for col in cols:
        box = (max(x, col * 64), y, min(x + w, (col + 1) * 64), y + h)
        apart += places_at(layer, x, y, w, h, drift.get((col, ty), (0, 0)), box)
    grouped = encoder._places(snap, layer, drift)
    assert grouped != apart  # some stamp crossed an edge between columns at one drift
    stamp = layer.stamp
    assert pillow(snap.bgrx, w, h, stamp, grouped) == pillow(snap.bgrx, w, h, stamp, apart)
    assert to_rgbx(snap, layer, drift) == pillow(snap.bgrx, w, h, stamp, apart)


def test_pillows_paste_is_the_reference_of_the_pieces() -> None:
    """stamp_places.paste (the fallback) and the kernel take the same pieces to the same pixels,
    whole stamps included (paste uses the stamp itself, not a crop, for those)."""
    k = kernel()
    layer: WatermarkLayer = Watermark(fields={"user_id": "t-0007"}).layer(640, 480, 64, 0.0)
    sw, sh = layer.stamp.size
    w, h = sw + 40, sh + 30
    pieces: list[Place] = [(0, 0, sw, sh, 3, 5), (2, 1, sw - 4, sh - 2, 39, 28)]
    bgrx = bytes(range(256)) * (w * h * 4 // 256) + bytes(w * h * 4 % 256)
    img = paste(Image.frombytes("RGB", (w, h), bgrx, "raw", "BGRX"), layer, pieces)
    assert k.rgbx(bgrx, w, h, layer.stamp_rgba, sw, sh, pieces) == img.tobytes("raw", "RGBX")


@pytest.mark.parametrize(("size", "stamp", "piece"), [
    ((4, 2, 31), (2, 2, 16), (0, 0, 1, 1, 0, 0)),  # the wrong number of bytes
    ((4, 2, 32), (2, 2, 15), (0, 0, 1, 1, 0, 0)),
    ((-4, -2, 32), (2, 2, 16), (0, 0, 1, 1, 0, 0)),
    ((2**40, 2**40, 0), (2, 2, 16), (0, 0, 1, 1, 0, 0)),  # would overflow
    ((4, 2, 32), (2**40, 2**40, 0), (0, 0, 1, 1, 0, 0)),
    ((4, 2, 32), (2, 2, 16), (0, 0, 3, 1, 0, 0)),  # past the stamp
    ((4, 2, 32), (2, 2, 16), (1, 0, 0, 1, 0, 0)),  # backwards
    ((4, 2, 32), (2, 2, 16), (-1, 0, 1, 1, 0, 0)),
    ((4, 2, 32), (2, 2, 16), (0, 0, 2, 2, 3, 0)),  # past the region
    ((4, 2, 32), (2, 2, 16), (0, 0, 2, 2, 0, 1)),
    ((4, 2, 32), (2, 2, 16), (0, 0, 1, 1, -1, 0)),
    ((4, 2, 32), (2, 2, 16), (0, 0, 1, 1, 2**62, 0)),
])
def test_what_does_not_fit_is_refused(size: tuple[int, int, int], stamp: tuple[int, int, int],
                                      piece: Place) -> None:
    k = kernel()
    (w, h, n), (sw, sh, sn) = size, stamp
    with pytest.raises((ValueError, OverflowError),
                       match=r"pixels|outside the stamp|too large|too big|convert"):
        k.rgbx(bytes(n), w, h, bytes(sn), sw, sh, [(0, 0, 1, 1, 0, 0), piece])
    with pytest.raises(TypeError):
        k.rgbx(bytes(32), 4, 2, bytes(16), 2, 2, [(0, 0, 1, 1, 0)])
    with pytest.raises(TypeError):
        k.rgbx(bytes(32), 4, 2, bytes(16), 2, 2, [(0, 0, 1, 1, 0, "0")])


def test_the_encoder_blends_through_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    k = kernel()
    calls: list[int] = []

    class Spy:
        @staticmethod
        def rgbx(*args: object) -> object:
            calls.append(len(args[-1]))  # type: ignore[arg-type]
            return k.rgbx(*args)

    monkeypatch.setattr(encoder, "_stamp_blend", Spy)
    layer = Watermark(fields={"user_id": "t-0042"}).layer(640, 480, 64, 0.0)
    tx, ty = next(iter(sorted(layer.ink)))
    snap = RegionSnapshot(tx * 64, ty * 64, 64, 64, bytes(64 * 64 * 4), 64)
    tiles = encoder.encode_tiles([snap], layer, encoder.EncodeSettings())
    assert calls and calls[0] > 0 and tiles  # one call, with the tile's stamp pieces
    assert compiled.status()["stamp_blend"] is True


_DRIVER = textwrap.dedent("""
    rng = random.Random(43)
    calls = refused = 0
    for _ in range(3000):
        w, h = rng.randint(0, 70), rng.randint(0, 20)
        sw, sh = rng.randint(0, 30), rng.randint(0, 12)
        data = rng.randbytes(w * h * 4 + rng.choice([0, 0, 0, 1]))
        stamp = rng.randbytes(max(0, sw * sh * 4 + rng.choice([0, 0, 0, -1])))
        pieces = []
        for _ in range(rng.randint(0, 5)):
            sx0, sy0 = rng.randint(0, sw), rng.randint(0, sh)
            sx1, sy1 = rng.randint(sx0, sw), rng.randint(sy0, sh)
            ax = rng.randint(0, max(0, w - (sx1 - sx0)))
            ay = rng.randint(0, max(0, h - (sy1 - sy0)))
            piece = [sx0, sy0, sx1, sy1, ax, ay]
            if rng.random() < 0.1:
                piece[rng.randrange(6)] += rng.choice([-1, 1, 2**40])
            pieces.append(tuple(piece))
        try:
            out = k.rgbx(data, w, h, stamp, sw, sh, pieces)
            assert len(out) == len(data)
            calls += 1
        except (ValueError, OverflowError):
            refused += 1
    print("calls", calls, "refused", refused)
""")


def test_the_kernel_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    words = run_sanitized("stamp_blend", _DRIVER, tmp_path).split()
    calls, refused = int(words[1]), int(words[3])
    assert calls > 1000 and refused > 300
