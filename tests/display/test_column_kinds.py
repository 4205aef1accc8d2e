"""The C column-kinds kernel (gateway/display/column_kinds.c): the kinds numpy_kinds gives for
every column cut, colour count and content (solid columns, text, many colours, a single pixel
that differs at the very end); bounds, sizes and settings that do not fit are refused; the
encoder classifies through it; and the whole file under AddressSanitizer and UBSan."""

from __future__ import annotations

import textwrap
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from gateway.display import compiled, encoder
from gateway.display.encoder import PHOTO_COLORS, numpy_kinds
from tests.display.sanitized import in_use, run_sanitized


def kernel() -> ModuleType:
    return in_use(encoder._column_kinds, "column-kinds kernel")


def image(rng: np.random.Generator, w: int, h: int, colors: int, cuts: list[int]) -> Image.Image:
    """An image of up to ``colors`` colours, some columns one colour, some nearly."""
    palette = rng.integers(0, 256, (colors, 3), np.uint8)
    px = palette[rng.integers(0, colors, (h, w))]
    for c0, c1 in pairwise(cuts):
        if rng.random() < 0.4:  # a solid column
            px[:, c0 - cuts[0] : c1 - cuts[0]] = palette[rng.integers(0, colors)]
            if rng.random() < 0.3:  # ... but for one pixel, anywhere, often the last
                y = h - 1 if rng.random() < 0.5 else int(rng.integers(0, h))
                x = c1 - cuts[0] - 1 if rng.random() < 0.5 else int(rng.integers(c0, c1)) - cuts[0]
                px[y, x] = px[y, x] ^ 1
    return Image.fromarray(px, "RGB")


def rgbx(rng: np.random.Generator, img: Image.Image) -> bytes:
    """The image's RGBX bytes with a random fourth byte: the encoder's regions carry the
    watermark's alpha blended into it (stamp_blend.c), and no kind may depend on it."""
    px = np.frombuffer(img.tobytes("raw", "RGBX"), np.uint8).reshape(-1, 4).copy()
    px[:, 3] = rng.integers(0, 256, len(px), np.uint8)
    return px.tobytes()


@pytest.mark.parametrize("seed", range(6))
def test_the_kernel_gives_numpys_kinds(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel()
    rng = np.random.default_rng(seed)
    seen = set()
    for _ in range(120):
        w, h, t = int(rng.integers(1, 400)), int(rng.integers(1, 70)), int(rng.choice([16, 64]))
        x = int(rng.integers(0, 200))
        cuts = [x, *range((x // t + 1) * t, x + w, t), x + w]
        colors = int(rng.choice([1, 2, 30, PHOTO_COLORS - 1, PHOTO_COLORS, PHOTO_COLORS + 1,
                                 5000]))
        img = image(rng, w, h, colors, cuts)
        got = encoder._kinds(rgbx(rng, img), w, h, x, cuts)
        monkeypatch.setattr(encoder, "_column_kinds", None)
        assert got == numpy_kinds(img, x, cuts), (w, h, colors)
        assert encoder._kinds(rgbx(rng, img), w, h, x, cuts) == got
        monkeypatch.undo()
        seen.update(kind for kind, _ in got)
    assert seen == {"solid", "text", "photo"}


def test_the_colour_limit_is_getcolors_limit() -> None:
    """Exactly PHOTO_COLORS colours is few; one more is not (Pillow's getcolors agrees)."""
    k = kernel()
    for n, few in ((PHOTO_COLORS, True), (PHOTO_COLORS + 1, False)):
        keys = np.arange(n, dtype=np.uint32) * 0x010101 % 0x1000000
        img = Image.frombytes("RGB", (n, 1), np.stack([keys >> 16 & 255, keys >> 8 & 255,
                                                       keys & 255], 1).astype(np.uint8).tobytes())
        assert (img.getcolors(PHOTO_COLORS) is not None) is few
        got = k.kinds(img.tobytes("raw", "RGBX"), n, 1, [0, n], PHOTO_COLORS, 1)
        assert (got is not None) is few  # multiplier 1: every colour in one probe run


@pytest.mark.parametrize(("size", "bounds", "max_colors", "multiplier"), [
    ((4, 2, 31), [0, 4], 768, 3),  # the wrong number of bytes
    ((4, 2, 33), [0, 4], 768, 3),
    ((0, 2, 0), [0], 768, 3), ((4, 0, 0), [0, 4], 768, 3), ((-4, -2, 32), [0, 4], 768, 3),
    ((2**40, 2**40, 0), [0, 4], 768, 3),  # would overflow
    ((4, 2, 32), [0, 5], 768, 3), ((4, 2, 32), [1, 4], 768, 3), ((4, 2, 32), [0, 2, 2, 4], 768, 3),
    ((4, 2, 32), [0], 768, 3), ((4, 2, 32), [0, 3, 2, 4], 768, 3),
    ((4, 2, 32), [0, 4], 0, 3), ((4, 2, 32), [0, 4], 1025, 3), ((4, 2, 32), [0, 4], 768, 2),
    ((4, 2, 32), [0, 4], 768, 2**32 + 1),
])
def test_what_does_not_fit_is_refused(size: tuple[int, int, int], bounds: list[int],
                                      max_colors: int, multiplier: int) -> None:
    k = kernel()
    w, h, n = size
    with pytest.raises((ValueError, OverflowError)):
        k.kinds(bytes(n), w, h, bounds, max_colors, multiplier)
    with pytest.raises(TypeError):
        k.kinds(bytes(32), 4, 2, [0, "4"], 768, 3)


def test_the_encoder_classifies_through_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    k = kernel()
    calls: list[int] = []

    class Spy:
        @staticmethod
        def kinds(*args: object) -> object:
            calls.append(1)
            return k.kinds(*args)

    monkeypatch.setattr(encoder, "_column_kinds", Spy)
    snap = encoder.RegionSnapshot(60, 0, 200, 20, bytes(200 * 20 * 4))
    tiles = encoder.encode_tiles([snap], None, encoder.EncodeSettings())
    assert calls == [1] and tiles
    assert compiled.status()["column_kinds"] is True


_DRIVER = textwrap.dedent("""
    rng = random.Random(41)
    calls = refused = few = 0
    for _ in range(3000):
        w, h = rng.randint(0, 90), rng.randint(0, 12)
        colors = rng.choice([1, 3, 700, 2000])
        pool = [rng.randbytes(4) for _ in range(colors)]
        data = b"".join(rng.choice(pool) for _ in range(w * h)) + rng.choice([b"", b"", b"x"])
        cuts = sorted(set([0, w] + [rng.randint(0, w) for _ in range(rng.randint(0, 6))]))
        if rng.random() < 0.1:
            cuts[rng.randrange(len(cuts))] += rng.choice([-1, 1, 2**40])
        try:
            out = k.kinds(data, w, h, cuts, rng.choice([1, 16, 768, 1024]),
                          rng.getrandbits(32) | 1)
            calls += 1
            few += out is not None
        except (ValueError, OverflowError):
            refused += 1
    print("calls", calls, "refused", refused, "few", few)
""")


def test_the_kernel_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    words = run_sanitized("column_kinds", _DRIVER, tmp_path).split()
    calls, refused, few = int(words[1]), int(words[3]), int(words[5])
    assert calls > 1000 and refused > 300 and 0 < few < calls
