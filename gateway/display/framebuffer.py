"""The gateway's copy of the desktop: a BGRX Surface with tile-grid damage and ordered copies.

Attacker-controlled: rectangles and pixels written by the RFB decoder on behalf of the VNC server
(bounds are checked by the decoder; we re-check cheaply). Limits: at most MAX_PENDING_COPIES
recorded copies between two frames — beyond that copies degrade to plain damage.

The damage map answers one question: which pixels of the viewer's canvas may differ from this
framebuffer after the viewer replays the recorded copies in order. It is kept per grid tile as the
bounding box of what was drawn there (RFB says exactly which rectangles changed: a typed glyph is
16x18 pixels, not a 64x64 tile), so the encoder only re-sends those boxes. A blit damages its
boxes; a copy moves the damage of its source with it and clears destination boxes it covers.

Compiled with mypyc where installed (gateway.display.compiled): its annotations are checked at run
time there, so they must say what really comes in (a ``# type: ignore`` would become a TypeError),
and a compiled class cannot be patched from outside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.display.compiled import kernel
from gateway.rfb.surface import BYTES_PER_PIXEL

TILE = 64
MAX_PENDING_COPIES = 64
#: A tile keeps its damage as separate boxes (Framebuffer.parts) where their union would re-send
#: at least this many pixels nothing drew, and they would be over a third of it, up to MAX_PARTS
#: boxes. Chosen on the recorded office workloads (docs/PERFORMANCE.md part AM): a half left
#: the corner of a dragged window's L whole at some steps, a quarter cut a scrolling terminal's
#: runs of tiles into more images.
SPLIT_WASTE = 128
MAX_PARTS = 4


#: The C kernel gateway/display/row_copy.c, or None; numpy slicing does the same, and is its
#: reference.
_ROW_COPY: Any = kernel("row_copy")

#: A damaged box inside one tile: (x0, y0, x1, y1), absolute desktop coordinates, x1/y1 exclusive.
Box = tuple[int, int, int, int]
Damage = dict[tuple[int, int], Box]


@dataclass(frozen=True, slots=True)
class CopyOp:
    src_x: int
    src_y: int
    dst_x: int
    dst_y: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class CursorImage:
    hot_x: int
    hot_y: int
    w: int
    h: int
    rgba: bytes  # w*h*4, straight alpha


def tiles_in(x: int, y: int, w: int, h: int, tile: int = TILE) -> Iterator[tuple[int, int]]:
    """Tile (column, row) pairs a rectangle touches."""
    if w <= 0 or h <= 0:
        return
    for ty in range(y // tile, (y + h - 1) // tile + 1):
        for tx in range(x // tile, (x + w - 1) // tile + 1):
            yield tx, ty


class Framebuffer:
    """Implements gateway.rfb.surface.Surface. Pixels are one bytearray, row-major BGRX; a
    rectangle is drawn or copied by one C call (the row_copy kernel, or numpy slicing of a view
    of the bytes where it is not built), not one per row."""

    def __init__(self, width: int = 0, height: int = 0, tile: int = TILE) -> None:
        self.tile = tile
        self.cursor: CursorImage | None = None
        self.cursor_dirty = False
        # Called after each copy with (copy, damage_tile_callback): the watermark hooks in here.
        self.on_copy: Callable[[CopyOp], None] | None = None
        self.resize(width, height)

    # --- Surface ---------------------------------------------------------------------------

    def resize(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.stride = width * BYTES_PER_PIXEL
        self.pixels = bytearray(self.stride * height)
        self._rows = np.frombuffer(self.pixels, np.uint8).reshape(height, self.stride)
        self.cols = -(-width // self.tile)
        self.rows = -(-height // self.tile)
        # One key tuple per tile, made once: damage_rect runs for each of the ~150 rectangles
        # of a scrolled view's update, and a new (column, row) tuple each time was a third of it.
        self._keys = [(tx, ty) for ty in range(self.rows) for tx in range(self.cols)]
        self.resized = True
        self.copies: list[CopyOp] = []
        self._touched: set[tuple[int, int]] = set()
        self.damage: Damage = {}
        # Tiles whose damage is several boxes (damage[tile] is their union), where the union
        # would re-send mostly pixels nothing drew: the background a dragged window uncovers,
        # an L along the window's edge beside the window's copied title bar (issue 11 part AM).
        self.parts: dict[tuple[int, int], list[Box]] = {}
        self.damage_all()

    def fill(self, x: int, y: int, w: int, h: int, pixel: bytes) -> None:
        x, y, w, h = self._clip(x, y, w, h)
        if w <= 0 or h <= 0:
            return
        px = np.frombuffer(bytes(pixel[:4]).ljust(4, b"\0"), np.uint8)
        self._rows[y : y + h, x * 4 : (x + w) * 4].reshape(h, w, 4)[:] = px
        self.damage_rect(x, y, w, h)

    def blit(self, x: int, y: int, w: int, h: int, data: bytes | bytearray | memoryview) -> None:
        if len(data) != w * h * 4:
            raise ValueError("blit data size does not match the rectangle")
        if x >= 0 and y >= 0 and x + w <= self.width and y + h <= self.height:
            if w <= 0 or h <= 0:
                return
            # The usual case (RFB rectangles lie inside the framebuffer): no clipping.
            if _ROW_COPY is not None:
                _ROW_COPY.blit(self.pixels, self.stride, x * 4, y, w * 4, h, data)
            else:
                self._rows[y : y + h, x * 4 : (x + w) * 4] = \
                    np.frombuffer(data, np.uint8).reshape(h, w * 4)
            self.damage_rect(x, y, w, h)
            return
        cx, cy, cw, ch = self._clip(x, y, w, h)
        if cw <= 0 or ch <= 0:
            return
        src = np.frombuffer(data, np.uint8).reshape(h, w * 4)
        self._rows[cy : cy + ch, cx * 4 : (cx + cw) * 4] = \
            src[cy - y : cy - y + ch, (cx - x) * 4 : (cx - x + cw) * 4]
        self.damage_rect(cx, cy, cw, ch)

    def copy(self, src_x: int, src_y: int, x: int, y: int, w: int, h: int) -> None:
        if not (
            min(src_x, src_y, x, y) >= 0 and w > 0 and h > 0
            and src_x + w <= self.width and x + w <= self.width
            and src_y + h <= self.height and y + h <= self.height
        ):  # fmt: skip
            return
        if _ROW_COPY is not None:  # overlap-safe, without numpy's snapshot of the source
            _ROW_COPY.move(self.pixels, self.stride, src_x * 4, src_y, x * 4, y, w * 4, h)
        else:
            rows = self._rows
            # A snapshot of the source makes overlapping copies safe.
            rows[y : y + h, x * 4 : (x + w) * 4] = rows[src_y : src_y + h,
                                                        src_x * 4 : (src_x + w) * 4].copy()
        op = CopyOp(src_x, src_y, x, y, w, h)
        self._record_copy(op)
        if self.on_copy is not None:
            self.on_copy(op)

    def set_cursor(
        self, hot_x: int, hot_y: int, w: int, h: int, pixels: bytes, mask: bytes
    ) -> None:
        rgba = bytearray(w * h * 4)
        mask_stride = (w + 7) // 8
        for yy in range(h):
            for xx in range(w):
                i = (yy * w + xx) * 4
                b, g, r = pixels[i], pixels[i + 1], pixels[i + 2]
                bit = mask[yy * mask_stride + xx // 8] >> (7 - xx % 8) & 1 if mask else 1
                rgba[i : i + 4] = bytes((r, g, b, 255 if bit else 0))
        if w and h:
            hot_x, hot_y = min(hot_x, w - 1), min(hot_y, h - 1)
        self.cursor = CursorImage(hot_x, hot_y, w, h, bytes(rgba))
        self.cursor_dirty = True

    # --- damage ----------------------------------------------------------------------------

    def damage_rect(self, x: int, y: int, w: int, h: int) -> None:
        """Add a rectangle to the damage: its part in each tile it touches grows that tile's
        box. Clipped to the framebuffer (a tile outside it has no key: the stamps' boxes of a
        layer made before a resize may reach past the new edge). One pass, no lists: an update
        of a scrolled view is ~150 rectangles, each across two tiles (issue 11, part AL)."""
        x1, y1 = x + w, y + h
        x, y = (x if x > 0 else 0), (y if y > 0 else 0)
        x1, y1 = (x1 if x1 < self.width else self.width), (y1 if y1 < self.height else self.height)
        if x >= x1 or y >= y1:
            return
        t, cols, keys = self.tile, self.cols, self._keys
        damage, touched, parts = self.damage, self._touched, self.parts
        tx0, tx1 = x // t, (x1 - 1) // t
        ty, ty1 = y // t, (y1 - 1) // t
        while ty <= ty1:
            top = ty * t
            by0 = y if y > top else top
            by1 = y1 if y1 < top + t else top + t
            tx = tx0
            while tx <= tx1:
                left = tx * t
                bx0 = x if x > left else left
                bx1 = x1 if x1 < left + t else left + t
                key = keys[ty * cols + tx]
                old = damage.get(key)
                if old is None:
                    damage[key] = (bx0, by0, bx1, by1)
                    touched.add(key)
                elif parts and key in parts:
                    if self._add_part(key, (bx0, by0, bx1, by1)):
                        touched.add(key)
                else:
                    o0, o1, o2, o3 = old
                    # Already inside: nothing to do (most of an update's rectangles), not
                    # even _touched: damage_rect adds a tile to both, take() clears both. (A
                    # detected scroll sets damage of its own just before the take; a tile of
                    # it no rectangle touched holds its old pixels and keeps its row hashes.)
                    if not (o0 <= bx0 and o1 <= by0 and o2 >= bx1 and o3 >= by1):
                        u0, u1 = (o0 if o0 < bx0 else bx0), (o1 if o1 < by0 else by0)
                        u2, u3 = (o2 if o2 > bx1 else bx1), (o3 if o3 > by1 else by1)
                        if _wasteful(old, (bx0, by0, bx1, by1), (u2 - u0) * (u3 - u1)):
                            parts[key] = [old, (bx0, by0, bx1, by1)]
                        damage[key] = (u0, u1, u2, u3)
                        touched.add(key)
                tx += 1
            ty += 1

    def _add_part(self, key: tuple[int, int], box: Box) -> bool:
        """Add ``box`` to a tile kept in parts, merged with every part whose union with it
        wastes little (and then with those the merged box reaches); the tile goes back to one
        box when one part is left or past MAX_PARTS. Whether the damage grew."""
        b0, b1, b2, b3 = box
        pool = self.parts[key]
        for p0, p1, p2, p3 in pool:
            if p0 <= b0 and p1 <= b1 and p2 >= b2 and p3 >= b3:
                return False
        merged = box
        grew = True
        while grew:
            grew = False
            keep: list[Box] = []
            for part in pool:
                u = (part[0] if part[0] < merged[0] else merged[0],
                     part[1] if part[1] < merged[1] else merged[1],
                     part[2] if part[2] > merged[2] else merged[2],
                     part[3] if part[3] > merged[3] else merged[3])
                if _wasteful(part, merged, _area(u)):
                    keep.append(part)
                else:
                    merged, grew = u, True
            pool = keep
        pool.append(merged)
        if 1 < len(pool) <= MAX_PARTS:
            self.parts[key] = pool
        else:
            del self.parts[key]
        o0, o1, o2, o3 = self.damage[key]
        self.damage[key] = (o0 if o0 < b0 else b0, o1 if o1 < b1 else b1,
                            o2 if o2 > b2 else b2, o3 if o3 > b3 else b3)
        return True

    def damage_tiles(self, tiles: set[tuple[int, int]] | frozenset[tuple[int, int]]) -> None:
        for tx, ty in tiles:
            x, y, w, h = self.tile_rect(tx, ty)
            self.damage_rect(x, y, w, h)

    def damage_all(self) -> None:
        self.damage_rect(0, 0, self.width, self.height)

    @property
    def touched(self) -> set[tuple[int, int]]:
        """Tiles whose pixels changed since the last take() (damaged or copied into)."""
        return set(self._touched)

    def take(self) -> tuple[list[CopyOp], Damage, bool]:
        """Hand over (copies in order, damaged boxes per tile, resized) and start a new frame."""
        out = (self.copies, self.damage, self.resized)
        self.copies, self.damage, self._touched, self.resized = [], {}, set(), False
        self.parts = {}
        return out

    def set_damage(self, damage: Damage) -> None:
        """Replace the damage (a detected scroll's): one box per tile again."""
        self.damage, self.parts = damage, {}

    def resent(self) -> Damage:
        """A box per damaged tile that the frame certainly re-sends: the damage, with a tile
        kept in parts given its largest part (for the stamps and the JPEG marks, which may
        treat every pixel of it as re-sent)."""
        if not self.parts:
            return self.damage
        out = dict(self.damage)
        for key, tile_parts in self.parts.items():
            out[key] = max(tile_parts, key=_area)
        return out

    def _record_copy(self, op: CopyOp) -> None:
        t = self.tile
        if len(self.copies) >= MAX_PENDING_COPIES:
            # Give up on copies: without them the canvas keeps its old content, so everything
            # touched since the last frame must be re-sent.
            touched = self._touched | set(tiles_in(op.dst_x, op.dst_y, op.w, op.h, t))
            self.damage, self._touched, self.copies, self.parts = {}, set(), [], {}
            self.damage_tiles(touched)
            return
        self.copies.append(op)
        dx, dy = op.dst_x - op.src_x, op.dst_y - op.src_y
        sx1, sy1 = op.src_x + op.w, op.src_y + op.h
        moved: list[Box] = []
        for tile in tiles_in(op.src_x, op.src_y, op.w, op.h, t):
            box = self.damage.get(tile)
            if box is None:
                continue
            # The part of this damaged box inside the source, shifted to the destination.
            x0, y0 = max(box[0], op.src_x), max(box[1], op.src_y)
            x1, y1 = min(box[2], sx1), min(box[3], sy1)
            if x0 < x1 and y0 < y1:
                moved.append((x0 + dx, y0 + dy, x1 + dx, y1 + dy))
        dx1, dy1 = op.dst_x + op.w, op.dst_y + op.h
        for tile in tiles_in(op.dst_x, op.dst_y, op.w, op.h, t):
            box = self.damage.get(tile)
            # Destination boxes the copy covers now hold the viewer's (copied) pixels.
            if box is not None and op.dst_x <= box[0] and op.dst_y <= box[1] \
                    and box[2] <= dx1 and box[3] <= dy1:
                del self.damage[tile]
                self.parts.pop(tile, None)
            # Tiles partly covered keep their damage; the copy changed their pixels.
            self._touched.add(tile)
        for x0, y0, x1, y1 in moved:
            self.damage_rect(x0, y0, x1 - x0, y1 - y0)

    # --- reading ---------------------------------------------------------------------------

    @property
    def array(self) -> np.ndarray:
        """The pixels as a height × stride uint8 numpy view (read it, do not draw through it)."""
        return self._rows

    def read(self, x: int, y: int, w: int, h: int) -> bytes:
        """The BGRX bytes of a rectangle inside the framebuffer, row by row."""
        if x == 0 and w == self.width:
            return bytes(self.pixels[y * self.stride : (y + h) * self.stride])
        return self._rows[y : y + h, x * 4 : (x + w) * 4].tobytes()

    def tile_rect(self, tx: int, ty: int) -> tuple[int, int, int, int]:
        x, y = tx * self.tile, ty * self.tile
        return x, y, min(self.tile, self.width - x), min(self.tile, self.height - y)

    def _clip(self, x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        return x0, y0, x1 - x0, y1 - y0


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _wasteful(a: Box, b: Box, union: int) -> bool:
    """Whether over a third, and at least SPLIT_WASTE, of the union (``union`` pixels) of two
    boxes in a tile would be pixels neither covers."""
    i0, i1 = (a[0] if a[0] > b[0] else b[0]), (a[1] if a[1] > b[1] else b[1])
    i2, i3 = (a[2] if a[2] < b[2] else b[2]), (a[3] if a[3] < b[3] else b[3])
    both = (i2 - i0) * (i3 - i1) if i0 < i2 and i1 < i3 else 0
    waste = union - _area(a) - _area(b) + both
    return waste >= SPLIT_WASTE and 3 * waste > union
