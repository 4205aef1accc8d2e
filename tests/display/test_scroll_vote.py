"""The C vote kernel (gateway/display/scroll_vote.c): the shift numpy's vote finds, over random
tables with planted scrolls, ties, hashes too common to vote and shifts past MAX_SHIFT;
tables, rows and limits that do not fit are refused; scroll detection votes through it; and
the whole file under AddressSanitizer and UBSan."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from gateway.display import compiled, scroll
from gateway.display.scroll import (
    BAND_TILES,
    MAX_REPEATS,
    MAX_SHIFT,
    MIN_VOTES,
    VOTING_BANDS,
    RowHashes,
    _arrays,
)
from tests.display.sanitized import in_use, run_sanitized


def kernel() -> ModuleType:
    return in_use(scroll._SCROLL_VOTE, "vote kernel")


def tables(rng: np.random.Generator, bands: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """An old table and a new one: per band a planted shift (sometimes two, sometimes past
    MAX_SHIFT), a few values from a tiny set (common hashes, ties) and fresh rows."""
    old = rng.integers(0, 2**32, (bands, height), np.uint32)
    if rng.random() < 0.4:
        old[:, rng.integers(0, height, height // 3)] = rng.integers(0, 4)  # repeats
    new = rng.integers(0, 2**32, (bands, height), np.uint32)
    for b in range(bands):
        for _ in range(int(rng.integers(0, 3))):
            d = int(rng.choice([int(rng.integers(-60, 60)), MAX_SHIFT + 1, -MAX_SHIFT, 0]))
            y0, y1 = int(rng.integers(0, height)), int(rng.integers(0, height))
            for y in range(min(y0, y1), max(y0, y1)):
                if 0 <= y + d < height:
                    new[b, y] = old[b, y + d]
    return old, new


@pytest.mark.parametrize("seed", range(6))
def test_the_kernel_finds_the_shift_numpy_finds(seed: int) -> None:
    k = kernel()
    rng = np.random.default_rng(seed)
    found = set()
    for _ in range(60):
        bands, height = int(rng.integers(1, 6)), int(rng.choice([40, 300, 1500]))
        old, new = tables(rng, bands, height)
        hashes = RowHashes(b"seed")
        hashes.table = old
        damage = {}
        for _ in range(int(rng.integers(1, 40))):
            col, row = int(rng.integers(0, bands * 4)), int(rng.integers(0, -(-height // 64)))
            y0 = row * 64 + int(rng.integers(0, 64))
            damage[(col, row)] = (col * 64, min(y0, height - 1), col * 64 + 64,
                                  min(height, y0 + int(rng.integers(1, 64))))
        want = hashes.numpy_vote(new, damage)
        got = k.vote(old, new, height, *_arrays(damage), BAND_TILES, VOTING_BANDS, MAX_REPEATS,
                     MAX_SHIFT, MIN_VOTES)
        assert got == want
        assert hashes._vote(new, damage) == want  # the gateway's own call
        found.add(want is None)
    assert found == {True, False}  # shifts found, and frames without one


def vote(k: ModuleType, old: np.ndarray, new: np.ndarray, boxes: list[tuple[int, ...]],
         min_votes: int = MIN_VOTES, band_tiles: int = BAND_TILES, voting: int = VOTING_BANDS,
         height: int | None = None) -> object:
    """The kernel on a damage map of (column, x0, y0, x1, y1) boxes."""
    cols = np.array([b[0] for b in boxes], np.int64)
    arr = np.array([b[1:] for b in boxes], np.int64).reshape(-1, 4)
    return k.vote(old, new, old.shape[1] if height is None else height, cols, arr, band_tiles,
                  voting, MAX_REPEATS, MAX_SHIFT, min_votes)


def test_ties_go_to_the_shift_voted_for_first_and_bands_by_damaged_rows() -> None:
    k = kernel()
    old = np.arange(200, dtype=np.uint32).reshape(2, 100)
    new = np.full((2, 100), 10**9, np.uint32)
    new[0, 10:30] = old[0, 15:35]  # 20 rows vote +5
    new[0, 50:70] = old[0, 47:67]  # 20 rows vote -3, later
    new[1, 0:90] = old[1, 2:92]  # band 1: 90 rows vote +2
    whole = [(0, 0, 0, 64, 100)]
    assert vote(k, old, new, whole) == 5
    assert vote(k, old, new, [(0, 0, 40, 64, 100)]) == -3
    assert vote(k, old, new, whole, min_votes=21) is None
    assert vote(k, old, new, []) is None
    # Two bands named: both vote (VOTING_BANDS = 2), band 1's 88 matching rows win ...
    both = [*whole, (4, 256, 0, 320, 100)]
    assert vote(k, old, new, both) == 2
    # ... but with one voting band, the band with more damaged rows votes alone, and on a tie
    # the band the map names first.
    assert vote(k, old, new, [*whole, (4, 256, 0, 320, 90)], voting=1) == 5
    assert vote(k, old, new, [(4, 256, 0, 320, 100), *whole], voting=1) == 2
    assert vote(k, old, new, [*whole, (4, 256, 0, 320, 100)], voting=1) == 5


@pytest.mark.parametrize(("height", "box", "max_repeats", "max_shift"), [
    (0, (0, 0, 0, 64, 5), 3, 9), (7, (0, 0, 0, 64, 5), 3, 9),  # tables not bands × height
    (10, (0, 0, 0, 64, 11), 3, 9), (10, (0, 0, -1, 64, 5), 3, 9),  # rows past the table
    (10, (0, 0, 6, 64, 5), 3, 9),  # upside down
    (10, (8, 512, 0, 576, 5), 3, 9), (10, (-1, 0, 0, 64, 5), 3, 9),  # no such band
    (10, (0, 0, 0, 64, 5), 0, 9), (10, (0, 0, 0, 64, 5), 65, 9),
    (10, (0, 0, 0, 64, 5), 3, -1), (10, (0, 0, 0, 64, 5), 3, 2**21),
])
def test_what_does_not_fit_is_refused(height: int, box: tuple[int, ...], max_repeats: int,
                                      max_shift: int) -> None:
    k = kernel()
    table = np.zeros((2, 10), np.uint32)
    cols, boxes = np.array([box[0]], np.int64), np.array([box[1:]], np.int64)
    with pytest.raises(ValueError, match="do not fit"):
        k.vote(table, table, height, cols, boxes, BAND_TILES, VOTING_BANDS, max_repeats,
               max_shift, 1)
    with pytest.raises(ValueError, match="do not fit"):  # columns and boxes of other lengths
        k.vote(table, table, 10, np.zeros(2, np.int64), np.zeros((1, 4), np.int64), BAND_TILES,
               VOTING_BANDS, 3, 9, 1)
    with pytest.raises(ValueError, match="do not fit"):  # int32 columns
        k.vote(table, table, 10, np.zeros(1, np.int32), np.zeros((1, 4), np.int64), BAND_TILES,
               VOTING_BANDS, 3, 9, 1)


def test_scroll_detection_votes_through_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    k = kernel()
    calls: list[int] = []

    class Spy:
        @staticmethod
        def vote(*args: object) -> object:
            calls.append(1)
            return k.vote(*args)

    monkeypatch.setattr(scroll, "_SCROLL_VOTE", Spy)
    rng = np.random.default_rng(2)
    hashes = RowHashes(b"seed")
    hashes.table = rng.integers(0, 2**32, (2, 300), np.uint32)
    new = hashes.table.copy()
    new[:, :280] = hashes.table[:, 20:]
    damage = {(c, r): (c * 64, r * 64, c * 64 + 64, min(300, r * 64 + 64))
              for c in range(8) for r in range(5)}
    assert hashes._vote(new, damage) == 20 and calls == [1]
    assert compiled.status()["scroll_vote"] is True


_DRIVER = textwrap.dedent("""
    import array
    rng = random.Random(31)
    calls = refused = found = 0
    for _ in range(3000):
        bands, height = rng.randint(1, 3), rng.choice([1, 5, 64, 300, 300, 0])
        old = array.array("I", [rng.randrange(6) for _ in range(bands * height)])
        new = array.array("I", [rng.randrange(6) for _ in range(bands * height)])
        if rng.random() < 0.05:
            new = new[:-1] if len(new) else array.array("I", [1])
        cols, boxes = array.array("q"), array.array("q")
        for _ in range(rng.randint(0, 30)):
            y0 = rng.randint(0, height)
            box = [0, y0, 64, rng.randint(y0, height)]
            col = rng.randrange(4 * bands)
            if rng.random() < 0.02:
                box[rng.choice([1, 3])] += rng.choice([-1, 1, 2**40])
            if rng.random() < 0.02:
                col = rng.choice([-1, 4 * bands, 2**62])
            cols.append(col)
            boxes.extend(box)
        limits = [rng.choice([1, 3, 64]), rng.choice([0, 5, 1024])]
        if rng.random() < 0.05:
            limits[rng.randrange(2)] = rng.choice([0, -1, 65, 2**21])
        try:
            got = k.vote(old, new, height, cols, boxes, 4, rng.choice([1, 2, 3]), *limits,
                         rng.choice([1, 4]))
            calls += 1
            found += got is not None
        except ValueError:
            refused += 1
    print("calls", calls, "refused", refused, "found", found)
""")


def test_the_kernel_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    words = run_sanitized("scroll_vote", _DRIVER, tmp_path).split()
    calls, refused, found = int(words[1]), int(words[3]), int(words[5])
    assert calls > 500 and refused > 500 and found > 100
