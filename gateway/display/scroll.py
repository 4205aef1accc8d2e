"""Scroll detection: turn a redrawn-but-shifted region into one Copy plus the rows that differ.

Attacker-controlled: pixel content (whatever the desktop shows). Limits: one candidate shift per
frame, at most MAX_SHIFT rows; the hash table is 4 bytes per 64-pixel band-row (130 KiB at
1080p); a false match cannot corrupt the canvas because every row of the copied rectangle is
checked and mismatching rows stay damaged (CRC32 collisions aside: 2^-32 per band-row).

GTK and most toolkits redraw a scrolled view instead of asking X for a copy, so the VNC server
sends every line again and the gateway would re-encode the whole view each frame. We keep a CRC32
of every 64-pixel-wide band of every row as the viewer last saw it; when most damaged band-rows
equal old band-rows a fixed number of rows away, the frame starts with a Copy of that shift and
only the band-rows that do not match (the newly exposed lines) are encoded.
"""

from __future__ import annotations

import zlib
from array import array
from collections import Counter
from dataclasses import dataclass

from gateway.display.framebuffer import Box, CopyOp, Damage, Framebuffer

MAX_SHIFT = 1024
MIN_VOTES = 16  # matching band-rows needed before a shift is believed
MIN_ROWS = 32  # a copy shorter than this is not worth a message
VOTING_BANDS = 4  # the most damaged bands vote on the shift
MAX_REPEATS = 3  # a band-row seen more often than this in the old frame does not vote
MAX_REST = 0.5  # the copy must save at least half of the damaged pixels
MIN_TILES = 16  # smaller damage is cheaper to encode than to analyse


@dataclass(frozen=True, slots=True)
class Scroll:
    copy: CopyOp
    damage: Damage  # what still has to be encoded after the copy


class RowHashes:
    """CRC32 per (band, row) of the framebuffer as of the last frame taken."""

    def __init__(self) -> None:
        self.width = self.height = self.tile = 0
        self.bands: list[array[int]] = []
        # Hashes detect() computed for the current pixels, kept for the update() that follows.
        self._fresh: tuple[dict[int, array[int]], set[tuple[int, int]]] | None = None

    def reset(self, fb: Framebuffer) -> None:
        self.width, self.height, self.tile = fb.width, fb.height, fb.tile
        self._fresh = None
        self.bands = [array("I", bytes(4 * fb.height)) for _ in range(fb.cols)]
        self.update(fb, {(c, r) for c in range(fb.cols) for r in range(fb.rows)})

    def matches(self, fb: Framebuffer) -> bool:
        return (self.width, self.height, self.tile) == (fb.width, fb.height, fb.tile)

    def update(self, fb: Framebuffer, tiles: set[tuple[int, int]]) -> None:
        """Re-hash the tiles whose pixels changed (those detect() just hashed are reused)."""
        if self._fresh is not None:
            bands, hashed = self._fresh
            self._fresh = None
            for col, band in bands.items():
                self.bands[col] = band
            tiles = tiles - hashed
        for col, row in tiles:
            self._hash_into(fb, col, row * fb.tile, min(fb.height, (row + 1) * fb.tile),
                            self.bands[col])  # fmt: skip

    @staticmethod
    def _hash_into(fb: Framebuffer, col: int, y0: int, y1: int, out: array[int]) -> None:
        mv, stride, crc = memoryview(fb.pixels), fb.stride, zlib.crc32
        x0 = col * fb.tile * 4
        x1 = min(fb.stride, x0 + fb.tile * 4)
        for y in range(y0, y1):
            off = y * stride
            out[y] = crc(mv[off + x0 : off + x1])

    def detect(self, fb: Framebuffer, damage: Damage) -> Scroll | None:
        """A vertical shift explaining most of ``damage`` (new pixels vs the hashed old ones)."""
        t = fb.tile
        new: dict[int, array[int]] = {}
        for col, row in damage:
            band = new.setdefault(col, array("I", self.bands[col]))
            self._hash_into(fb, col, row * t, min(fb.height, (row + 1) * t), band)
        self._fresh = (new, set(damage))
        dy = self._vote(new, damage)
        if dy is None:
            return None
        # The copy spans the damaged bands and rows whose source stays on the desktop.
        cols = [c for c, _ in damage]
        x0, x1 = min(cols) * t, min(fb.width, (max(cols) + 1) * t)
        y0 = max(min(b[1] for b in damage.values()), -dy)
        y1 = min(max(b[3] for b in damage.values()), fb.height - dy)
        if y1 - y0 < MIN_ROWS:
            return None
        rest: Damage = {}
        for col in range(x0 // t, -(-x1 // t)):
            old, now = self.bands[col], new.get(col, self.bands[col])
            bx1 = min(fb.width, (col + 1) * t)
            for c0 in range(y0, y1, t):
                c1 = min(y1, c0 + t)
                if now[c0:c1] == old[c0 + dy : c1 + dy]:
                    continue  # the common case, compared in C
                for y in range(c0, c1):
                    if now[y] != old[y + dy]:
                        _add(rest, t, (col * t, y, bx1, y + 1))
        for box in damage.values():  # damage outside the copied rows stays as it was
            for part in _outside(box, y0, y1):
                _add(rest, t, part)
        if _area(rest) > MAX_REST * _area(damage):
            return None  # a wrong guess (or barely a scroll): plain damage is cheaper
        return Scroll(CopyOp(x0, y0 + dy, x0, y0, x1 - x0, y1 - y0), rest)

    def _vote(self, new: dict[int, array[int]], damage: Damage) -> int | None:
        votes: Counter[int] = Counter()
        rows: Counter[int] = Counter()
        for (col, _row), box in damage.items():
            rows[col] += box[3] - box[1]
        for col, _n in rows.most_common(VOTING_BANDS):
            band = new[col]
            where: dict[int, list[int]] = {}
            for y, h in enumerate(self.bands[col]):
                where.setdefault(h, []).append(y)
            for (c, _row), box in damage.items():
                if c != col:
                    continue
                for y in range(box[1], box[3]):
                    srcs = where.get(band[y], ())
                    if len(srcs) <= MAX_REPEATS:  # blank rows match anything: no evidence
                        votes.update(s - y for s in srcs if s != y and abs(s - y) <= MAX_SHIFT)
        if not votes:
            return None
        dy, n = votes.most_common(1)[0]
        return dy if n >= MIN_VOTES else None


def _area(damage: Damage) -> int:
    return sum((b[2] - b[0]) * (b[3] - b[1]) for b in damage.values())


def _outside(box: Box, y0: int, y1: int) -> list[Box]:
    x0, by0, x1, by1 = box
    parts = []
    if by0 < y0:
        parts.append((x0, by0, x1, min(by1, y0)))
    if by1 > y1:
        parts.append((x0, max(by0, y1), x1, by1))
    return [p for p in parts if p[1] < p[3]]


def _add(damage: Damage, t: int, box: Box) -> None:
    """Union a box lying inside one tile column into the per-tile damage map."""
    x0, y0, x1, y1 = box
    for row in range(y0 // t, (y1 - 1) // t + 1):
        part = (x0, max(y0, row * t), x1, min(y1, (row + 1) * t))
        key = (x0 // t, row)
        old = damage.get(key)
        if old is not None:
            part = (min(old[0], part[0]), min(old[1], part[1]),
                    max(old[2], part[2]), max(old[3], part[3]))  # fmt: skip
        damage[key] = part
