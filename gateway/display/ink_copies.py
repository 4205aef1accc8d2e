"""Stamped background re-sent as a copy: a flat region the frame must re-send, whose stamps the
viewer already shows elsewhere on the same background, goes out as a Copy from there.

A window dragged over the desktop uncovers a strip of background each step, and the watermark's
ink on it went out as a PALETTE image: a third of a page-driven drag's bytes, and most of what it
cost over noVNC's (issue 11 part AM). The stamps repeat on a lattice, so the strip's pixels as
the viewer should show them (the background's colour, the ink at the tile's drift) are often on
the canvas already: one lattice step away, on the same background, at the same drift (or at
another drift, moved by the difference). A Copy is 18 bytes.

Only where the result is exact: the source lies in tiles this frame neither re-sends nor holds
as JPEG (so the viewer shows the framebuffer there with the ink at those tiles' drift, after the
frame's own copies, which come first), and the source's pixels, blended as the viewer shows
them, equal the region's, compared byte for byte. Pure: no I/O, the framebuffer is only read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np

from gateway.display.encoder import Drift, RegionSnapshot, to_rgbx
from gateway.display.framebuffer import Box, Framebuffer, tiles_in
from gateway.display.watermark import WatermarkLayer
from gateway.wire import display as wire

Vec = tuple[int, int]

#: Lattice steps tried per drift (the region's own, and the grid's), the shortest first.
LATTICE_STEPS = 12

_lattices: dict[object, list[Vec]] = {}


def lattice(layer: WatermarkLayer) -> list[Vec]:
    """The shortest non-zero differences between stamp origins (translations of the layer,
    where it is a lattice; the byte comparison catches where it is not)."""
    found = _lattices.get(layer.key)
    if found is None:
        o = layer.origins
        steps = {(b[0] - a[0], b[1] - a[1]) for a in o for b in o if a != b}
        found = sorted(steps, key=lambda v: (v[0] * v[0] + v[1] * v[1], v))[:LATTICE_STEPS]
        if len(_lattices) > 8:
            _lattices.clear()
        _lattices[layer.key] = found
    return found


def ink_copies(fb: Framebuffer, snaps: Iterable[RegionSnapshot], damage: Collection[Vec],
               held: Collection[Vec], drift: Drift, layer: WatermarkLayer
               ) -> tuple[list[RegionSnapshot], list[wire.Copy | wire.Fill]]:
    """The snapshots still to encode, and the messages (to follow the frame's own copies) for
    the flat ones found on the canvas: a Copy per piece at one drift, a Fill for a piece with
    no ink. ``damage``: tiles the frame re-sends; ``held``: tiles the viewer holds as JPEG."""
    keep: list[RegionSnapshot] = []
    out: list[wire.Copy | wire.Fill] = []
    t = fb.tile
    for snap in snaps:
        px = np.frombuffer(snap.bgrx, np.uint32)
        pieces = None if snap.lossless or not px.size or not (px == px[0]).all() \
            else _pieces(drift, snap.x, snap.y, snap.w, snap.h, t)
        if pieces is None or not any(_inked(layer, box, d) for box, d in pieces):
            keep.append(snap)  # not flat, or no ink on it: one Fill, as the encoder sends it
            continue
        pixel = snap.bgrx[:4]
        b, g, r = pixel[:3]
        found: list[wire.Copy | wire.Fill] = []
        for box, d in pieces:
            x0, y0, x1, y1 = box
            w, h = x1 - x0, y1 - y0
            want = to_rgbx(RegionSnapshot(x0, y0, w, h, pixel * (w * h), t), layer,
                           dict.fromkeys(tiles_in(x0, y0, w, h, t), d))
            shown = np.frombuffer(want, np.uint32)
            if (shown == shown[0]).all():
                found.append(wire.Fill(x0, y0, w, h, r, g, b))
                continue
            src = _source(fb, box, d, int(px[0]), want, damage, held, drift, layer)
            if src is None:
                break
            found.append(wire.Copy(src[0], src[1], x0, y0, w, h))
        else:
            out.extend(found)
            continue
        keep.append(snap)
    return keep, out


def _inked(layer: WatermarkLayer, box: Box, d: Vec) -> bool:
    """Whether stamps at drift ``d`` put ink in ``box``."""
    return bool(layer.ink_in(box[0] - d[0], box[1] - d[1], box[2] - box[0], box[3] - box[1]))


def _pieces(drift: Drift, x: int, y: int, w: int, h: int, tile: int
            ) -> list[tuple[Box, Vec]] | None:
    """The region cut where its stamps' drift changes: per tile its piece, at the tile's drift
    or, in a tile cut into parts, each part's; neighbouring whole pieces at one drift joined.
    None where a piece is not inside one part."""
    out: list[tuple[Box, Vec]] = []
    x1, y1 = x + w, y + h
    for k in tiles_in(x, y, w, h, tile):
        piece = (max(x, k[0] * tile), max(y, k[1] * tile),
                 min(x1, k[0] * tile + tile), min(y1, k[1] * tile + tile))
        v = drift.get(k, (0, 0))
        if isinstance(v[0], int):
            last = out[-1] if out else None
            if last is not None and last[1] == v and last[0][2] == piece[0] \
                    and last[0][1] == piece[1] and last[0][3] == piece[3]:
                out[-1] = ((last[0][0], piece[1], piece[2], piece[3]), last[1])
            else:
                out.append((piece, v))  # type: ignore[arg-type]
            continue
        covered = 0
        for box, d in v:  # type: ignore[misc]
            c0, c1 = max(piece[0], box[0]), max(piece[1], box[1])
            c2, c3 = min(piece[2], box[2]), min(piece[3], box[3])
            if c0 < c2 and c1 < c3:
                out.append(((c0, c1, c2, c3), d))
                covered += (c2 - c0) * (c3 - c1)
        if covered != (piece[2] - piece[0]) * (piece[3] - piece[1]):
            return None  # parts overlap or leave a gap: not a cut to rely on
    return out


def _source(fb: Framebuffer, box: Box, d: Vec, colour: int, want: bytes,
            damage: Collection[Vec], held: Collection[Vec], drift: Drift, layer: WatermarkLayer
            ) -> Vec | None:
    """Where the canvas shows ``want`` (the box's pixels as the viewer should show them, at
    drift ``d``) on undamaged background of the same colour, if it is found."""
    x, y = box[0], box[1]
    w, h, t = box[2] - x, box[3] - y, fb.tile
    rows = fb.array
    tried: set[Vec] = set()
    for lx, ly in lattice(layer):
        # The same stamps, one lattice step away: at the region's drift there, or at the drift
        # of the tile they land in, moved by the difference.
        near = drift.get(((x + lx) // t, (y + ly) // t), (0, 0))
        for ds in (d, near) if isinstance(near[0], int) and near != d else (d,):
            sx, sy = x + ds[0] - d[0] + lx, y + ds[1] - d[1] + ly  # type: ignore[operator]
            if sx < 0 or sy < 0 or sx + w > fb.width or sy + h > fb.height or (sx, sy) in tried:
                continue
            tried.add((sx, sy))
            tiles = list(tiles_in(sx, sy, w, h, t))
            if any(k in damage or k in held for k in tiles) or _one_drift(
                    drift, sx, sy, w, h, t) != ds:
                continue
            region = rows[sy:sy + h, sx * 4:(sx + w) * 4]
            if not (np.ascontiguousarray(region).view(np.uint32) == colour).all():
                continue
            there = RegionSnapshot(sx, sy, w, h, region.tobytes(), t)
            if to_rgbx(there, layer, dict.fromkeys(tiles, ds)) == want:  # type: ignore[arg-type]
                return sx, sy
    return None


def _one_drift(drift: Drift, x: int, y: int, w: int, h: int, tile: int) -> Vec | None:
    """The drift of the region's pixels when it is one drift (see _pieces)."""
    pieces = _pieces(drift, x, y, w, h, tile)
    if not pieces or any(d != pieces[0][1] for _, d in pieces):
        return None
    return pieces[0][1]
