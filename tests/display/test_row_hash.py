"""The C row-hash kernel (gateway/display/row_hash.c): the hashes numpy's band_hashes gives, for
any run of rows, width and offset; scroll detection finds the same scrolls and keeps the same
table with and without it; rows or buffers that do not fit are refused before anything is
written; and the whole file under AddressSanitizer and UBSan."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from gateway.display import compiled, scroll
from gateway.display.framebuffer import Framebuffer
from gateway.display.scroll import RowHashes, band_hashes
from tests.display.sanitized import in_use, run_sanitized


def kernel() -> ModuleType:
    return in_use(scroll._ROW_HASH, "row-hash kernel")


def halves(coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return ((coeffs & np.uint64(0xFFFFFFFF)).astype(np.uint32),
            (coeffs >> np.uint64(32)).astype(np.uint32))


@pytest.mark.parametrize("seed", range(4))
def test_the_kernel_gives_numpys_hashes(seed: int) -> None:
    k, rng = kernel(), np.random.default_rng(seed)
    coeffs = rng.integers(0, 2**64, 300, np.uint64, endpoint=False)
    lo, hi = halves(coeffs)
    for _ in range(200):
        width, height = int(rng.integers(1, 300)), int(rng.integers(1, 40))
        stride = width * 4 + int(rng.integers(0, 9))  # rows need not be whole pixels apart
        pixels = bytearray(rng.integers(0, 256, stride * height, np.uint8).tobytes())
        if rng.random() < 0.3:  # runs of equal pixels, as a desktop has
            pixels = bytearray(bytes(pixels[:8]) * (len(pixels) // 8) + bytes(len(pixels) % 8))
        x = int(rng.integers(0, stride - 3))
        words = int(rng.integers(0, (stride - x) // 4 + 1))
        y = int(rng.integers(0, height))
        rows = int(rng.integers(0, height - y + 1))
        out = np.full(rows + 5, 7, np.uint32)
        at = int(rng.integers(0, 6))
        k.hash_rows(pixels, stride, x, y, rows, words, lo, hi, out, at)
        region = np.frombuffer(bytes(pixels), np.uint8).reshape(height, stride)
        want = band_hashes(region[y : y + rows, x : x + words * 4].copy(), coeffs)
        assert out[at : at + rows].tolist() == want.tolist()
        assert (out[:at] == 7).all() and (out[at + rows :] == 7).all()  # nothing else written


def test_scroll_detection_is_the_same_with_and_without_the_kernel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Random redrawn views, scrolled by random amounts, some with new lines: the same scrolls
    found, the same damage left, the same table, through the kernel and through numpy."""
    k = kernel()
    w, h = 700, 500
    results = []
    for handle in (k, None):
        monkeypatch.setattr(scroll, "_ROW_HASH", handle)
        rng = random.Random(3)
        fb = Framebuffer(w, h)
        lines = np.random.default_rng(1).integers(0, 256, (h * 4, w * 4), np.uint8)
        fb.blit(0, 0, w, h, lines[:h].tobytes())
        hashes, top, found = RowHashes(b"seed"), 0, []
        hashes.reset(fb)
        fb.take()
        for _ in range(12):
            top = min(3 * h, top + rng.choice([0, 16, 37, 64, 100]))
            view = lines[top : top + h].copy()
            view[rng.randrange(h), :] = rng.randrange(256)  # a changed line
            fb.blit(0, 0, w, h, view.tobytes())
            _, damage, _ = fb.take()
            got = hashes.detect(fb, damage)
            found.append(None if got is None else (got.copy, sorted(got.damage.items())))
            hashes.update(fb, set(damage))
        results.append((found, hashes.table.copy()))
    assert results[0][0] == results[1][0]
    assert (results[0][1] == results[1][1]).all()
    assert sum(f is not None for f in results[0][0]) >= 6  # most steps were found as scrolls


@pytest.mark.parametrize(("stride", "x", "y", "rows", "words", "at"), [
    (40, 0, 0, 11, 10, 0),  # one row past the bottom
    (40, 4, 0, 1, 10, 0),  # past the right edge
    (40, 0, 0, 1, 11, 0),  # wider than a row
    (40, 0, 0, 2, 1, 15),  # out has 16 hashes: 15 + 2 do not fit
    (40, -1, 0, 1, 1, 0), (40, 0, -1, 1, 1, 0), (40, 0, 0, -1, 1, 0), (40, 0, 0, 1, -1, 0),
    (40, 0, 0, 1, 1, -1), (-40, 0, 0, 1, 1, 0),
    (40, 0, 2**62, 2, 1, 0), (40, 0, 1, 2**62, 1, 0), (40, 0, 0, 1, 2**62, 0),  # would overflow
])
def test_rows_that_do_not_fit_are_refused(stride: int, x: int, y: int, rows: int, words: int,
                                          at: int) -> None:
    k = kernel()
    lo = hi = np.ones(16, np.uint32)
    out = np.zeros(16, np.uint32)
    with pytest.raises(ValueError, match="do not fit"):
        k.hash_rows(bytes(400), stride, x, y, rows, words, lo, hi, out, at)
    assert not out.any()


def test_short_or_misaligned_buffers_are_refused() -> None:
    k = kernel()
    lo = hi = np.ones(16, np.uint32)
    with pytest.raises(ValueError, match="do not fit"):  # 17 coefficients needed, 16 given
        k.hash_rows(bytes(400), 80, 0, 0, 1, 17, lo, hi, np.zeros(4, np.uint32), 0)
    raw = np.zeros(20, np.uint8)
    with pytest.raises(ValueError, match="do not fit"):  # uint32s written one byte off
        k.hash_rows(bytes(400), 40, 0, 0, 1, 1, lo, hi, raw[1:17], 0)
    assert not raw.any()
    with pytest.raises(TypeError):  # a read-only target
        k.hash_rows(bytes(400), 40, 0, 0, 1, 1, lo, hi, bytes(16), 0)


def test_the_gateways_scroll_detection_hashes_through_the_kernel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    k = kernel()
    calls: list[int] = []

    class Spy:
        @staticmethod
        def hash_rows(*args: object) -> None:
            calls.append(1)
            k.hash_rows(*args)

    monkeypatch.setattr(scroll, "_ROW_HASH", Spy)
    fb = Framebuffer(600, 300)
    hashes = RowHashes(b"seed")
    hashes.reset(fb)
    assert len(calls) == 3  # one call per band: 600 pixels are three bands of 256
    assert compiled.status()["row_hash"] is True


_DRIVER = textwrap.dedent("""
    rng = random.Random(17)
    lo = bytearray(rng.randbytes(4 * 64))
    hi = bytearray(rng.randbytes(4 * 64))
    calls = refused = 0
    for _ in range(4000):
        stride = rng.choice([0, 4, 13, 64, 260])
        height = rng.randint(0, 9)
        pixels = bytes(rng.randbytes(stride * height + rng.choice([0, 0, 3])))
        x = rng.randint(0, stride)
        words = rng.randint(0, max(0, (stride - x) // 4))
        y = rng.randint(0, height)
        rows = rng.randint(0, height - y)
        out = bytearray(4 * rng.randint(0, 12))
        at = rng.randint(0, 4)
        args = [stride, x, y, rows, words, at]
        if rng.random() < 0.25:  # one bound off by a little, or a lot
            args[rng.randrange(6)] += rng.choice([-1, 1, 3, 2**40])
        stride, x, y, rows, words, at = args
        coeffs = lo if rng.random() < 0.95 else lo[: 4 * rng.randint(0, 8)]
        try:
            k.hash_rows(pixels, stride, x, y, rows, words, coeffs, hi, out, at)
            calls += 1
        except ValueError:
            refused += 1
    print("calls", calls, "refused", refused)
""")


def test_the_kernel_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    words = run_sanitized("row_hash", _DRIVER, tmp_path).split()
    calls, refused = int(words[1]), int(words[3])
    assert calls > 1000 and refused > 1000  # many runs hashed, many refused
