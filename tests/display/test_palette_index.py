"""The C palette kernel (gateway/display/palette_index.c): the same bytes as the numpy path it
replaces, on every index width and at every colour limit; hostile sizes and colours refused or
bounded; and the whole file run under AddressSanitizer and UBSan on random and edge input."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gateway.display import compiled, palette
from tests.display.sanitized import in_use, run_sanitized


def kernel() -> ModuleType:
    return in_use(palette._kernel, "palette kernel")


def image(w: int, h: int, colors: int, rng: random.Random, runs: bool = False) -> Image.Image:
    """``colors`` distinct random colours (all of them present when w×h allows), in random
    pixels, or in runs as text and flat areas draw them."""
    inks: set[bytes] = set()
    while len(inks) < colors:
        inks.add(rng.randbytes(3))
    ordered = list(inks)
    px = ordered + [rng.choice(ordered) for _ in range(max(0, w * h - colors))]
    px = px[: w * h]
    if runs:
        px.sort()
    else:
        rng.shuffle(px)
    return Image.frombytes("RGB", (w, h), b"".join(px))


def both(img: Image.Image, max_colors: int, multiplier: int = 0x9E3779B1
         ) -> tuple[object, object]:
    w, h = img.size
    return (kernel().index(img.tobytes("raw", "RGBX"), w, h, max_colors, multiplier),
            palette.numpy_index(img, max_colors))


@pytest.mark.parametrize("limit", [2, 4, 16, 256])
@pytest.mark.parametrize(("w", "h"), [(1, 1), (3, 2), (7, 5), (9, 9), (17, 3), (64, 64)])
def test_the_kernel_gives_the_numpy_paths_bytes_at_and_past_each_limit(
        limit: int, w: int, h: int) -> None:
    rng = random.Random(limit * 1000 + w * 10 + h)
    for colors in sorted({1, 2, 3, 4, 5, 15, 16, 17, limit - 1, limit, limit + 1}):
        if not 1 <= colors <= min(257, w * h):
            continue
        for runs in (False, True):
            ours, reference = both(image(w, h, colors, rng, runs), limit)
            assert ours == reference, (colors, runs)
            assert (ours is None) == (colors > limit)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 70), st.integers(1, 20), st.integers(1, 257), st.integers(1, 256),
       st.booleans(), st.integers(0, 2**32 - 1), st.integers(0, 2**16))
def test_the_kernel_gives_the_numpy_paths_bytes_on_any_image(
        w: int, h: int, colors: int, limit: int, runs: bool, multiplier: int, seed: int) -> None:
    img = image(w, h, min(colors, w * h), random.Random(seed), runs)
    ours, reference = both(img, limit, multiplier | 1)
    assert ours == reference


def test_the_result_does_not_depend_on_the_multiplier() -> None:
    img = image(40, 30, 200, random.Random(7))
    results = {repr(both(img, 256, m)[0]) for m in (1, 3, 0x9E3779B1, 2**32 - 1)}
    assert len(results) == 1


def test_colours_that_all_collide_are_still_right() -> None:
    """With multiplier 1 every 0x0000XX key hashes to slot 0: 256 colours in one probe run, the
    worst case (the desktop cannot see the gateway's random multiplier). A lookup then probes at
    most 257 slots, by construction (palette_index.c); here the answer must still be exact,
    and a 257th colour still refused."""
    k = kernel()
    w, h = 512, 480  # 245,760 pixels: the largest image the encoder merges
    rng = random.Random(3)
    px = bytes(b for _ in range(w * h) for b in (0, 0, rng.randrange(256), 0))
    img = Image.frombytes("RGBX", (w, h), px).convert("RGB")
    ours = k.index(px, w, h, 256, 1)
    assert ours is not None and len(ours[0]) == 3 * 256
    assert ours == palette.numpy_index(img, 256)
    assert k.index(px[:-4] + bytes((0, 1, 0, 0)), w, h, 256, 1) is None  # one colour more


@pytest.mark.parametrize(("args", "error"), [
    ((b"\0" * 15, 2, 2, 16, 1), "15 bytes are not 2x2 pixels"),
    ((b"\0" * 17, 2, 2, 16, 1), "17 bytes are not 2x2 pixels"),
    ((b"", -1, 0, 16, 1), "are not -1x0"),
    ((b"", 0, -4, 16, 1), "are not 0x-4"),
    ((b"\0" * 16, 2**62, 2**62, 16, 1), "are not"),  # w×h×4 would overflow
    ((b"\0" * 16, 2**61, 2, 16, 1), "are not"),
    ((b"\0" * 16, 2, 2, 0, 1), "max_colors must be 1..256"),
    ((b"\0" * 16, 2, 2, 257, 1), "max_colors must be 1..256"),
    ((b"\0" * 16, 2, 2, 16, 2), "odd 32-bit"),
    ((b"\0" * 16, 2, 2, 16, 2**33 + 1), "odd 32-bit"),
])
def test_sizes_and_settings_that_do_not_fit_are_refused(args: tuple[object, ...],
                                                        error: str) -> None:
    with pytest.raises(ValueError, match=error):
        kernel().index(*args)


def test_an_empty_image_has_no_palette_on_either_path() -> None:
    assert kernel().index(b"", 0, 7, 16, 1) is None
    assert palette.numpy_index(Image.new("RGB", (0, 7)), 16) is None


def test_pixels_may_come_from_any_buffer_and_are_not_kept() -> None:
    px = bytearray(b"\x10\x20\x30\x00" * 6)
    out = kernel().index(memoryview(px), 3, 2, 16, 1)
    assert out == (b"\x10\x20\x30", b"\0\0")
    px.extend(b"x")  # the buffer was released: it may be resized again
    with pytest.raises(TypeError):
        kernel().index("not bytes", 1, 1, 16, 1)


def test_the_gateway_uses_the_kernel_where_it_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    k = kernel()
    assert compiled.status()["palette_index"] is True
    calls: list[tuple[int, int, int]] = []

    class Spy:
        @staticmethod
        def index(px: bytes, w: int, h: int, limit: int, mul: int) -> object:
            calls.append((w, h, limit))
            return k.index(px, w, h, limit, mul)

    monkeypatch.setattr(palette, "_kernel", Spy)
    img = image(30, 10, 5, random.Random(1))
    assert palette.encode(img, 16) is not None
    assert calls == [(30, 10, 16)]
    assert palette.index(img, 16) == palette.numpy_index(img, 16)


# The whole file, compiled with AddressSanitizer and UBSan, driven by random and edge input;
# what each call returns is checked there too.
_DRIVER = textwrap.dedent("""
    rng = random.Random(11)
    calls = 0
    for _ in range(3000):
        w, h = rng.randint(0, 80), rng.randint(0, 12)
        colors = rng.choice([1, 2, 3, 4, 5, 16, 17, 200, 256, 257, 300])
        inks = [rng.randbytes(3) + b"\\0" for _ in range(colors)]
        px = b"".join(rng.choice(inks) for _ in range(w * h))
        limit = rng.choice([1, 2, 4, 16, 255, 256])
        mul = rng.choice([1, 3, rng.getrandbits(32) | 1])
        out = k.index(px, w, h, limit, mul)
        if out is not None:
            palette, rows = out
            n = len(palette) // 3
            bits = 1 if n <= 2 else 2 if n <= 4 else 4 if n <= 16 else 8
            assert 1 <= n <= limit and len(rows) == (w * bits + 7) // 8 * h
        calls += 1
        bad = [(px + b"x", w, h), (px, -w - 1, h), (px, 2**62, 2**62)]
        bad += [(px, w + 1, h)] if h else [(px, w, h + 1)] if w else []
        for args in bad:
            try:
                k.index(*args, 16, 1)
            except ValueError:
                pass
            else:
                raise AssertionError(f"accepted {args[1]}x{args[2]}")
    print("calls", calls)
""")


def test_the_kernel_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    assert "calls 3000" in run_sanitized("palette_index", _DRIVER, tmp_path)
