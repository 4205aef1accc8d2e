"""The C row kernel (gateway/display/row_copy.c): blits and overlapping moves give what the
framebuffer's numpy slicing gives; rectangles outside the buffer, or pixels of the wrong length,
are refused before a byte moves; and the whole file under AddressSanitizer and UBSan."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from gateway.display import compiled, framebuffer
from tests.display.sanitized import in_use, run_sanitized
from tests.display.sources import source_module

W, H = 97, 61  # odd sizes: no rectangle lines up with anything by chance
STRIDE = W * 4


def kernel() -> ModuleType:
    return in_use(framebuffer._ROW_COPY, "row kernel")


def rect(rng: random.Random) -> tuple[int, int, int, int]:
    w, h = rng.randint(0, W), rng.randint(0, H)
    return rng.randint(0, W - w), rng.randint(0, H - h), w, h


@pytest.mark.parametrize("seed", range(4))
def test_blits_and_moves_give_what_numpy_gives(seed: int) -> None:
    k, rng = kernel(), random.Random(seed)
    ours = bytearray(rng.randbytes(STRIDE * H))
    ref = np.frombuffer(bytearray(ours), np.uint8).reshape(H, STRIDE).copy()
    for _ in range(400):
        x, y, w, h = rect(rng)
        if rng.random() < 0.4:
            data = rng.randbytes(w * h * 4)
            k.blit(ours, STRIDE, x * 4, y, w * 4, h, memoryview(data) if w % 2 else data)
            ref[y : y + h, x * 4 : (x + w) * 4] = np.frombuffer(data, np.uint8).reshape(h, w * 4)
        else:
            # Often near the source: overlapping moves in every direction, and onto itself.
            sx, sy = (x, y) if rng.random() < 0.2 else (min(W - w, max(0, x + rng.randint(-9, 9))),
                                                        min(H - h, max(0, y + rng.randint(-9, 9))))
            k.move(ours, STRIDE, sx * 4, sy, x * 4, y, w * 4, h)
            ref[y : y + h, x * 4 : (x + w) * 4] = ref[sy : sy + h, sx * 4 : (sx + w) * 4].copy()
        assert bytes(ours) == ref.tobytes()


def test_whole_rows_go_in_one_copy_and_nothing_moves_for_an_empty_rectangle() -> None:
    k = kernel()
    buf = bytearray(STRIDE * H)
    k.blit(buf, STRIDE, 0, 5, STRIDE, 3, b"\x07" * STRIDE * 3)
    assert buf[5 * STRIDE : 8 * STRIDE] == b"\x07" * STRIDE * 3 and buf.count(7) == STRIDE * 3
    k.blit(buf, STRIDE, 8, 10**15, 0, 10**15, b"")  # nothing to copy: no pointer is formed
    k.move(buf, STRIDE, 0, 10**15, 0, 0, 0, 10**15)
    k.move(buf, STRIDE, 0, 0, 4, 10, 8, 0)
    assert buf.count(7) == STRIDE * 3


@pytest.mark.parametrize(("x", "y", "row_bytes", "rows"), [
    (-4, 0, 8, 1), (0, -1, 8, 1), (0, 0, -8, 1), (0, 0, 8, -1),
    (STRIDE - 4, 0, 8, 1),  # past the right edge
    (0, 0, STRIDE + 4, 1),  # wider than a row
    (0, H - 1, 8, 2),  # past the bottom
    (0, 2**62, 8, 1), (0, 1, 8, 2**62), (2**62, 0, 8, 1),  # would overflow
])
def test_rectangles_outside_the_buffer_are_refused(x: int, y: int, row_bytes: int,
                                                   rows: int) -> None:
    k = kernel()
    buf = bytearray(STRIDE * H)
    with pytest.raises(ValueError, match="do not fit the buffer"):
        k.blit(buf, STRIDE, x, y, row_bytes, rows, b"\1" * max(0, min(row_bytes * rows, 64)))
    with pytest.raises(ValueError, match="do not fit the buffer"):
        k.move(buf, STRIDE, x, y, 0, 0, row_bytes, rows)
    with pytest.raises(ValueError, match="do not fit the buffer"):
        k.move(buf, STRIDE, 0, 0, x, y, row_bytes, rows)
    assert not any(buf)


def test_pixels_of_the_wrong_length_or_a_read_only_target_are_refused() -> None:
    k = kernel()
    buf = bytearray(STRIDE * H)
    for data in (b"\1" * 31, b"\1" * 33):
        with pytest.raises(ValueError, match="are not 4 rows of 8 bytes"):
            k.blit(buf, STRIDE, 0, 0, 8, 4, data)
    with pytest.raises(TypeError):
        k.blit(bytes(STRIDE * H), STRIDE, 0, 0, 8, 4, b"\1" * 32)
    with pytest.raises(ValueError):
        k.blit(buf, -STRIDE, 0, 0, 8, 4, b"\1" * 32)
    assert not any(buf)


def test_the_framebuffer_draws_the_same_with_and_without_the_kernel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The framebuffer's source run twice on the same random blits and copies (some past the
    edges, clipped first): once through the kernel, once through numpy."""
    kernel()
    source = source_module("framebuffer")
    results = []
    for row_copy in (framebuffer._ROW_COPY, None):
        monkeypatch.setattr(source, "_ROW_COPY", row_copy)
        rng, fb = random.Random(5), source.Framebuffer(W, H)
        for _ in range(300):
            w, h = rng.randint(1, 60), rng.randint(1, 40)
            x, y = rng.randint(-20, W), rng.randint(-20, H)
            if rng.random() < 0.5:
                fb.blit(x, y, w, h, rng.randbytes(w * h * 4))
            else:
                fb.copy(rng.randint(-3, W), rng.randint(-3, H), x, y, w, h)
        results.append((bytes(fb.pixels), fb.take()[1]))
    assert results[0] == results[1]
    assert compiled.status()["row_copy"] is True


def test_the_installed_framebuffer_draws_through_the_kernel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway's own Framebuffer (compiled, where built) calls the kernel for a blit inside
    the framebuffer and for a copy."""
    k = kernel()
    calls: list[str] = []

    class Spy:
        @staticmethod
        def blit(*args: object) -> None:
            calls.append("blit")
            k.blit(*args)

        @staticmethod
        def move(*args: object) -> None:
            calls.append("move")
            k.move(*args)

    monkeypatch.setattr(framebuffer, "_ROW_COPY", Spy)
    fb = framebuffer.Framebuffer(W, H)
    fb.blit(3, 4, 5, 6, b"\x09" * 5 * 6 * 4)
    fb.copy(3, 4, 20, 30, 5, 6)
    assert calls == ["blit", "move"]
    assert bytes(fb.pixels).count(9) == 2 * 5 * 6 * 4


_DRIVER = textwrap.dedent("""
    rng = random.Random(13)

    def place(stride, height):
        x, y = rng.randint(0, stride), rng.randint(0, height)
        return [x, y, rng.randint(0, stride - x), rng.randint(0, height - y)]

    def nudge(args):  # one bound off by a little (or a lot), a fifth of the time
        if rng.random() < 0.2:
            args[rng.randrange(4)] += rng.choice([-3, -1, 1, 4, 2**40])
        return args

    calls = refused = 0
    for _ in range(4000):
        stride = rng.choice([0, 4, 12, 388])
        height = rng.randint(0, 9)
        buf = bytearray(stride * height + rng.choice([0, 0, 3]))
        x, y, row_bytes, rows = nudge(place(stride, height))
        sx, sy = place(stride, height)[:2]
        data = rng.randbytes(max(0, min(row_bytes * rows, 4096)) + rng.choice([0, 0, 0, 1]))
        for call in (lambda: k.blit(buf, stride, x, y, row_bytes, rows, data),
                     lambda: k.move(buf, stride, sx, sy, x, y, row_bytes, rows)):
            try:
                call()
                calls += 1
            except ValueError:
                refused += 1
    print("calls", calls, "refused", refused)
""")


def test_the_kernel_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    words = run_sanitized("row_copy", _DRIVER, tmp_path).split()
    calls, refused = int(words[1]), int(words[3])
    assert calls > 4000 and refused > 1000  # most calls copy something, many are refused
