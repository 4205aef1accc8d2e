"""Scroll detection: turn a redrawn-but-shifted region into one Copy plus the rows that differ.

Attacker-controlled: pixel content (whatever the desktop shows). Limits: one candidate shift per
frame, at most MAX_SHIFT rows; the hash table is 4 bytes per 256-pixel band-row (34 KiB at
1080p); a false match cannot corrupt the canvas because every row of the copied rectangle is
checked and mismatching rows stay damaged (hash collisions aside: about 2^-31 per band-row for
keys drawn at random per session, which the desktop's content cannot see).

GTK and most toolkits redraw a scrolled view instead of asking X for a copy, so the VNC server
sends every line again and the gateway would re-encode the whole view each frame. We keep a hash
of every 256-pixel-wide band of every row as the viewer last saw it; when most damaged band-rows
equal old band-rows a fixed number of rows away, the frame starts with a Copy of that shift and
only the band-rows that do not match (the newly exposed lines) are encoded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.display.compiled import kernel
from gateway.display.framebuffer import CopyOp, Damage, Framebuffer

#: The C kernels gateway/display/row_hash.c and scroll_vote.c, or None; band_hashes and
#: RowHashes.numpy_vote give the same hashes and shift, and are their references.
_ROW_HASH: Any = kernel("row_hash")
_SCROLL_VOTE: Any = kernel("scroll_vote")

MAX_SHIFT = 1024
MIN_VOTES = 16  # matching band-rows needed before a shift is believed
MIN_ROWS = 32  # a copy shorter than this is not worth a message
BAND_TILES = 4  # a hashed band is this many tiles wide
VOTING_BANDS = 2  # the most damaged bands vote on the shift
MAX_REPEATS = 3  # a band-row seen more often than this in the old frame does not vote
MAX_REST = 0.5  # the copy must save at least half of the damaged pixels
MIN_TILES = 16  # smaller damage is cheaper to encode than to analyse


@dataclass(frozen=True, slots=True)
class Scroll:
    copy: CopyOp
    damage: Damage  # what still has to be encoded after the copy


class RowHashes:
    """A 32-bit hash per (band, row) of the framebuffer as of the last frame taken, in one
    numpy table (bands × rows). A band is BAND_TILES tiles wide. Every row of a band is hashed
    by one vectorised multiply-sum (see band_hashes; the C kernel row_hash.c computes the same
    hashes a run of rows per call, about three times as fast), so hashing the whole redrawn
    view costs about as much as copying it once; per-row zlib.crc32 calls used to be most of
    take_frame."""

    def __init__(self, seed: bytes | None = None) -> None:
        self.width = self.height = self.tile = self.band_w = 0
        self.table = np.zeros((0, 0), np.uint32)
        # Random per session: pixel content cannot aim at a collision it cannot see.
        self._rng = np.random.default_rng(int.from_bytes(seed or os.urandom(16), "big"))
        self.coeffs = np.zeros(0, np.uint64)
        # Hashes detect() computed for the current pixels, kept for the update() that follows.
        self._fresh: tuple[np.ndarray, set[tuple[int, int]]] | None = None

    def reset(self, fb: Framebuffer) -> None:
        self.width, self.height, self.tile = fb.width, fb.height, fb.tile
        self.band_w = fb.tile * BAND_TILES
        self._fresh = None
        self.coeffs = self._rng.integers(0, 2**64, self.band_w, np.uint64, endpoint=False)
        # The coefficients' halves, as the C kernel takes them.
        self._lo = (self.coeffs & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        self._hi = (self.coeffs >> np.uint64(32)).astype(np.uint32)
        n = -(-fb.width // self.band_w)
        self.table = np.zeros((n, fb.height), np.uint32)
        for band in range(n):
            self._hash_into(fb, band, 0, fb.height, self.table)

    def matches(self, fb: Framebuffer) -> bool:
        return (self.width, self.height, self.tile) == (fb.width, fb.height, fb.tile)

    def _band_rows(self, tiles: object) -> set[tuple[int, int]]:
        return {(col // BAND_TILES, row) for col, row in tiles}  # type: ignore[attr-defined]

    def update(self, fb: Framebuffer, tiles: set[tuple[int, int]],
               copies: Sequence[CopyOp] = (), damage: Damage | None = None) -> None:
        """Record that the tiles' pixels changed. Those detect() just hashed keep their hashes;
        the others are hashed now. (They used to be forgotten as too costly to hash: then the
        first wheel steps after a window opened matched nothing and went out whole, ~3x the
        pixels of a detected step. Hashed in numpy, a typed glyph's band-rows cost ~30 µs.)

        ``copies`` and ``damage``: the frame's, as fb.take() hands them over. A band-row the
        copies filled from whole band-rows and no damage touched takes the hashes moved with it
        instead (see _carry): a terminal's scroll no longer hashes every line it moved."""
        t = fb.tile
        stale = self._band_rows(tiles)
        if self._fresh is not None:
            self.table, hashed = self._fresh
            self._fresh = None
            stale -= hashed
        elif copies:
            stale -= self._carry(copies, t) - self._band_rows(damage or ())
        for band, r0, r1 in _runs(stale):
            self._hash_into(fb, band, r0 * t, min(fb.height, r1 * t), self.table)

    def _carry(self, copies: Sequence[CopyOp], t: int) -> set[tuple[int, int]]:
        """Apply the copies, in order, to the hash table, as the viewer applies them to its
        canvas; returns the band-rows whose every row now holds a known hash.

        A copy that keeps its column and spans a band's whole width moves that band's rows
        whole, so their hashes move with them; one that covers a band in part leaves the rows
        it writes unknown, and so does a row moved from an unknown one. Pixels the frame
        re-sends are not the viewer's: their band-rows are in the damage and hashed anyway
        (the framebuffer moves damage along with copies)."""
        bw, table = self.band_w, self.table
        unknown = np.zeros(table.shape, np.bool_)
        for op in copies:
            dst, src = slice(op.dst_y, op.dst_y + op.h), slice(op.src_y, op.src_y + op.h)
            for band in range(op.dst_x // bw, (op.dst_x + op.w - 1) // bw + 1):
                x0, x1 = band * bw, min((band + 1) * bw, self.width)
                if op.src_x == op.dst_x and op.dst_x <= x0 and x1 <= op.dst_x + op.w:
                    table[band, dst] = table[band, src].copy()
                    unknown[band, dst] = unknown[band, src].copy()
                else:
                    unknown[band, dst] = True
        rows = -(-self.height // t)
        padded = np.zeros((table.shape[0], rows * t), np.bool_)
        padded[:, : self.height] = unknown
        bands, tile_rows = np.nonzero(~padded.reshape(table.shape[0], rows, t).any(axis=2))
        return set(zip(bands.tolist(), tile_rows.tolist(), strict=True))

    def _hash_into(self, fb: Framebuffer, band: int, y0: int, y1: int, out: np.ndarray) -> None:
        x0 = band * self.band_w * 4
        x1 = min(fb.stride, x0 + self.band_w * 4)
        if _ROW_HASH is not None and out.flags.c_contiguous:
            _ROW_HASH.hash_rows(fb.pixels, fb.stride, x0, y0, y1 - y0, (x1 - x0) // 4, self._lo,
                                self._hi, out, band * out.shape[1] + y0)
        else:
            out[band, y0:y1] = band_hashes(fb.array[y0:y1, x0:x1], self.coeffs)

    def detect(self, fb: Framebuffer, damage: Damage) -> Scroll | None:
        """A vertical shift explaining most of ``damage`` (new pixels vs the hashed old ones)."""
        t, bw = fb.tile, self.band_w
        hashed = self._band_rows(damage)
        new = self.table.copy()
        for band, r0, r1 in _runs(hashed):  # consecutive tile rows hashed in one call
            self._hash_into(fb, band, r0 * t, min(fb.height, r1 * t), new)
        self._fresh = (new, hashed)
        cols, boxes = _arrays(damage)
        dy = self._vote(new, damage, cols, boxes)
        if dy is None:
            return None
        # The copy spans the damaged tile columns and rows whose source stays on the desktop.
        x0, x1 = int(cols.min()) * t, min(fb.width, (int(cols.max()) + 1) * t)
        y0 = max(int(boxes[:, 1].min()), -dy)
        y1 = min(int(boxes[:, 3].max()), fb.height - dy)
        if y1 - y0 < MIN_ROWS:
            return None
        b0, b1 = x0 // bw, -(-x1 // bw)
        rest = _mismatch_boxes(new[b0:b1, y0:y1] != self.table[b0:b1, y0 + dy : y1 + dy],
                               b0, bw, x0, x1, y0, t)
        # Damage outside the copied rows stays as it was (most boxes lie inside). Each box lies
        # in one tile: its rows above y0 and below y1 stay in that tile's box.
        kept = np.flatnonzero((boxes[:, 1] < y0) | (boxes[:, 3] > y1))
        for col, (bx0, by0, bx1, by1) in zip(cols[kept].tolist(), boxes[kept].tolist(),
                                             strict=True):
            top = by0 if by0 < y0 else max(by0, y1)
            bottom = by1 if by1 > y1 else min(by1, y0)
            key = (col, by0 // t)
            old = rest.get(key)
            rest[key] = (bx0, top, bx1, bottom) if old is None else (
                min(old[0], bx0), min(old[1], top), max(old[2], bx1), max(old[3], bottom))
        area = int(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sum())
        if _area(rest) > MAX_REST * area:
            return None  # a wrong guess (or barely a scroll): plain damage is cheaper
        return Scroll(CopyOp(x0, y0 + dy, x0, y0, x1 - x0, y1 - y0), rest)

    def _vote(self, new: np.ndarray, damage: Damage, cols: np.ndarray | None = None,
              boxes: np.ndarray | None = None) -> int | None:
        """The shift most damaged band-rows agree on: each damaged row votes for every old row
        with its hash (unless that hash is too common to be evidence); ties go to the shift
        voted for first, rows in ascending order. In one C call (scroll_vote.c) where built;
        ``cols`` and ``boxes``: the damage as _arrays gives it, if the caller has it."""
        if cols is None or boxes is None:
            cols, boxes = _arrays(damage)
        if _SCROLL_VOTE is not None and new.flags.c_contiguous \
                and self.table.flags.c_contiguous:
            found: int | None = _SCROLL_VOTE.vote(
                self.table, new, self.table.shape[1], cols, boxes, BAND_TILES, VOTING_BANDS,
                MAX_REPEATS, MAX_SHIFT, MIN_VOTES)
            return found
        return self.numpy_vote(new, damage)

    def numpy_vote(self, new: np.ndarray, damage: Damage) -> int | None:
        """_vote in numpy, and the kernel's reference."""
        rows = _damaged_rows(damage, self.table.shape[1])
        shifts = []
        for band in sorted(rows, key=lambda b: -len(rows[b]))[:VOTING_BANDS]:
            old = self.table[band]
            order = np.argsort(old, kind="stable")  # equal hashes keep ascending rows
            ordered = old[order]
            ys = rows[band]
            values = new[band][ys]
            lo = np.searchsorted(ordered, values, "left")
            count = np.searchsorted(ordered, values, "right") - lo
            k = np.arange(MAX_REPEATS)
            srcs = order[np.minimum(lo[:, None] + k, len(order) - 1)].astype(np.int64)
            d = srcs - ys[:, None]
            ok = (k < count[:, None]) & (count[:, None] <= MAX_REPEATS) & (d != 0) \
                & (np.abs(d) <= MAX_SHIFT)
            shifts.append(d[ok])  # row-major: by row, then by source row
        votes = np.concatenate(shifts) if shifts else np.empty(0, np.int64)
        if not votes.size:
            return None
        found, first, counts = np.unique(votes, return_index=True, return_counts=True)
        best = counts.max()
        tied = np.flatnonzero(counts == best)
        pick = tied[np.argmin(first[tied])]
        return int(found[pick]) if best >= MIN_VOTES else None


def band_hashes(rows: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """One 32-bit hash per row of ``rows`` (uint8, h × 4·n bytes: n pixels per row).

    Vector multiply-shift (Dietzfelbinger 1996): each row's 32-bit words x_i against random
    64-bit coefficients a_i, h = (Σ a_i·x_i mod 2^64) >> 32; any two different rows collide
    with probability about 2^-31 over the choice of the a_i. One einsum over all rows."""
    words = rows.view(np.uint32)  # rows may be a strided slice: each row is contiguous
    sums = np.einsum("ij,j->i", words, coeffs[: words.shape[1]])
    return (sums >> np.uint64(32)).astype(np.uint32)


def _mismatch_boxes(differs: np.ndarray, b0: int, bw: int, x0: int, x1: int, y0: int, t: int
                    ) -> Damage:
    """The damage map of the rows that do not match: ``differs`` is bands × rows (band b0 on,
    the desktop's row y0 on). In each tile row, a band's mismatching rows make one box (from
    the first to the last), cut at the tile columns inside [x0, x1); bands left to right, tile
    rows top to bottom. Found for all bands and tile rows at once in numpy: a Python loop over
    each run of mismatching rows was a sixth of scroll detection."""
    nb, n = differs.shape
    r0, r1 = y0 // t, -(-(y0 + n) // t)
    rows = np.zeros((nb, (r1 - r0) * t), np.bool_)
    rows[:, y0 - r0 * t : y0 - r0 * t + n] = differs
    tiles = rows.reshape(nb, r1 - r0, t)
    bands, trows = np.nonzero(tiles.any(axis=2))
    first = tiles.argmax(axis=2)[bands, trows]
    last = t - tiles[:, :, ::-1].argmax(axis=2)[bands, trows]  # one past the last
    out: Damage = {}
    for band, row, a, b in zip((bands + b0).tolist(), (trows + r0).tolist(), first.tolist(),
                               last.tolist(), strict=True):
        bx0, bx1 = max(x0, band * bw), min(x1, (band + 1) * bw)
        ya, yb = row * t + a, row * t + b
        for col in range(bx0 // t, (bx1 - 1) // t + 1):
            out[(col, row)] = (max(bx0, col * t), ya, min(bx1, (col + 1) * t), yb)
    return out


def _arrays(damage: Damage) -> tuple[np.ndarray, np.ndarray]:
    """The damage map as arrays: tile columns (n) and boxes (n × 4), in the map's order."""
    return (np.fromiter((c for c, _ in damage), np.int64, len(damage)),
            np.array(list(damage.values()), np.int64).reshape(-1, 4))  # fmt: skip


def _damaged_rows(damage: Damage, height: int) -> dict[int, np.ndarray]:
    """Per band (in the order the map first names it), the ascending rows its boxes cover."""
    cols, boxes = _arrays(damage)
    bands = cols // BAND_TILES
    out: dict[int, np.ndarray] = {}
    for band in dict.fromkeys(bands.tolist()):
        sel = boxes[bands == band]
        count = np.zeros(height + 1, np.int32)  # +1 where a box starts, -1 past its end
        np.add.at(count, sel[:, 1], 1)
        np.add.at(count, sel[:, 3], -1)
        out[band] = np.flatnonzero(np.cumsum(count[:-1]) > 0)
    return out


def _runs(band_rows: set[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(band, first row, end row) for each run of consecutive tile rows of a band."""
    out: list[tuple[int, int, int]] = []
    for band, row in sorted(band_rows):
        if out and out[-1][0] == band and out[-1][2] == row:
            out[-1] = (band, out[-1][1], row + 1)
        else:
            out.append((band, row, row + 1))
    return out


def _area(damage: Damage) -> int:
    return sum((b[2] - b[0]) * (b[3] - b[1]) for b in damage.values())
