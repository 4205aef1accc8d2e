"""Stamped background re-sent as a copy: a flat region the frame must re-send, whose stamps the
viewer already shows elsewhere on the same background, goes out as a Copy from there.

A window dragged over the desktop uncovers a strip of background each step, and the watermark's
ink on it went out as a PALETTE image: a third of a page-driven drag's bytes, and most of what it
cost over noVNC's (issue 11 part AM). The stamps repeat on a lattice, so the strip's pixels as
the viewer should show them (the background's colour, the ink at the tile's drift) are often on
the canvas already: one lattice step away, on the same background, at the same drift (or at
another drift, moved by the difference). A Copy is 18 bytes.

A flat region is first tried whole, its pieces at their drifts, with the vector the frame's last
copy took tried first: a window's uncovered strip, cut by the drifts of the tiles it crosses,
went out as a Copy per inked piece and a Fill per inkless one, three messages a region where the
encoder without a watermark sends one Fill. Copies by one vector, and Fills of one colour, that
share a whole edge (a strip down several tile rows) are joined, and one Fill goes under a strip
whose inkless tiles would otherwise each be a Fill of their own. Together a fifth fewer bytes
in a page-driven drag (part AN).

Only where the result is exact: the source lies in tiles this frame neither re-sends nor holds
as JPEG (so the viewer shows the framebuffer there with the ink at those tiles' drift, after the
frame's own copies, which come first), and the source's pixels, blended as the viewer shows
them, equal the region's, compared byte for byte. Pure: no I/O, the framebuffer is only read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator

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
    the flat ones found on the canvas: one Copy for the whole region, or else a Copy per piece
    at one drift and a Fill per piece with no ink. ``damage``: tiles the frame re-sends;
    ``held``: tiles the viewer holds as JPEG."""
    keep: list[RegionSnapshot] = []
    out: list[wire.Copy | wire.Fill] = []
    t = fb.tile
    prefer: Vec | None = None  # the vector of the last copy found: neighbours then join
    plain: dict[int, wire.Fill] = {}  # flat snapshots without ink: the Fill each would be
    under: list[wire.Fill] = []  # flat snapshots with ink, as Fills that may join those
    for snap in snaps:
        px = np.frombuffer(snap.bgrx, np.uint32)
        pieces = None if snap.lossless or not px.size or not (px == px[0]).all() \
            else _pieces(drift, snap.x, snap.y, snap.w, snap.h, t)
        inked = [] if pieces is None else [(box, d) for box, d in pieces
                                           if _inked(layer, box, d)]
        if not inked:
            keep.append(snap)  # not flat, or no ink on it: one Fill, as the encoder sends it
            if pieces is not None:
                b, g, r = snap.bgrx[:3]
                plain[id(snap)] = wire.Fill(snap.x, snap.y, snap.w, snap.h, r, g, b)
            continue
        pixel, colour = snap.bgrx[:4], int(px[0])
        b, g, r = pixel[:3]
        under.append(wire.Fill(snap.x, snap.y, snap.w, snap.h, r, g, b))
        assert pieces is not None
        whole = (snap.x, snap.y, snap.x + snap.w, snap.y + snap.h)
        src = _source(fb, whole, inked[0], colour, to_rgbx(snap, layer, drift), damage, held,
                      drift, layer, prefer)
        if src is not None:
            out.append(wire.Copy(src[0], src[1], snap.x, snap.y, snap.w, snap.h))
            prefer = (src[0] - snap.x, src[1] - snap.y)
            continue
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
            src = _source(fb, box, (box, d), colour, want, damage, held, drift, layer, prefer)
            if src is None:
                break
            found.append(wire.Copy(src[0], src[1], x0, y0, w, h))
        else:
            out.extend(found)
            continue
        keep.append(snap)
    return _bridged(keep, joined(out), plain, under)


def _bridged(keep: list[RegionSnapshot], msgs: list[wire.Copy | wire.Fill],
             plain: dict[int, wire.Fill], under: list[wire.Fill]
             ) -> tuple[list[RegionSnapshot], list[wire.Copy | wire.Fill]]:
    """A strip of background cut into tiles with ink and tiles without went out as a Fill, a
    Copy, a Fill...: where one Fill laid under the whole strip first (the copies and the
    images of inked tiles then drawn over it) takes fewer messages than the inkless tiles'
    own Fills, it replaces them. It writes only tiles the frame re-sends, so no copy's
    source."""
    if not msgs or not plain:
        return keep, msgs
    bare = joined(sorted(plain.values(), key=_corner))
    # Sorted with the inkless first among equals; a joined Fill is kept if one of them is in it.
    items = sorted([(*_corner(f), 0, f) for f in plain.values()]
                   + [(*_corner(f), 1, f) for f in under], key=lambda i: i[:3])
    joins, owner = _join([f for *_, f in items])
    needed = {owner[n] for n, item in enumerate(items) if item[2] == 0}
    fills = [f for i, f in enumerate(joins) if i in needed]
    if len(fills) >= len(bare):
        return keep, msgs
    return [s for s in keep if id(s) not in plain], [*fills, *msgs]


def _corner(m: wire.Copy | wire.Fill) -> tuple[int, int]:
    x, y, _, _ = _rect(m)
    return y, x


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


def _source(fb: Framebuffer, box: Box, anchor: tuple[Box, Vec], colour: int, want: bytes,
            damage: Collection[Vec], held: Collection[Vec], drift: Drift, layer: WatermarkLayer,
            prefer: Vec | None = None) -> Vec | None:
    """Where the canvas shows ``want`` (the box's pixels as the viewer should show them) on
    undamaged background of the same colour, if it is found: ``prefer`` first, then one
    lattice step away from ``anchor`` (an inked piece of the box, at its drift), at the
    anchor's drift there or at the drift of the tile the step lands in, moved by the
    difference."""
    x, y = box[0], box[1]
    w, h, t = box[2] - x, box[3] - y, fb.tile
    (ax, ay, _, _), d = anchor
    tried: set[Vec] = set()
    for sx, sy in _candidates(x, y, ax, ay, d, drift, t, layer, prefer):
        if sx < 0 or sy < 0 or sx + w > fb.width or sy + h > fb.height or (sx, sy) in tried:
            continue
        tried.add((sx, sy))
        if any(k in damage or k in held for k in tiles_in(sx, sy, w, h, t)) \
                or _pieces(drift, sx, sy, w, h, t) is None:
            continue  # re-sent, held as JPEG, or parts that are no clean cut
        region = fb.array[sy:sy + h, sx * 4:(sx + w) * 4]
        if (np.ascontiguousarray(region).view(np.uint32) == colour).all() \
                and _shown(fb, sx, sy, w, h, drift, layer) == want:
            return sx, sy
    return None


def _candidates(x: int, y: int, ax: int, ay: int, d: Vec, drift: Drift, tile: int,
                layer: WatermarkLayer, prefer: Vec | None) -> Iterator[Vec]:
    """Source corners to try for a region at (x, y) whose inked piece at (ax, ay) sits at
    drift ``d``."""
    if prefer is not None:
        yield x + prefer[0], y + prefer[1]
    for lx, ly in lattice(layer):
        near = drift.get(((ax + lx) // tile, (ay + ly) // tile), (0, 0))
        yield x + lx, y + ly
        if isinstance(near[0], int) and near != d:
            yield x + near[0] - d[0] + lx, y + near[1] - d[1] + ly  # type: ignore[operator]


def _shown(fb: Framebuffer, x: int, y: int, w: int, h: int, drift: Drift,
           layer: WatermarkLayer) -> bytes:
    """The region as the viewer shows it: the framebuffer with the ink at each part's drift,
    blended a tile row at a time (as the encoder's snapshots are)."""
    t, rows, out = fb.tile, fb.array, []
    y1 = y + h
    while y < y1:
        b1 = min(y1, (y // t + 1) * t)
        out.append(to_rgbx(RegionSnapshot(x, y, w, b1 - y, rows[y:b1, x * 4:(x + w) * 4]
                                          .tobytes(), t), layer, drift))
        y = b1
    return b"".join(out)


def joined(msgs: Iterable[wire.Copy | wire.Fill]) -> list[wire.Copy | wire.Fill]:
    """Copies by one vector, and Fills of one colour, whose rectangles share a whole edge,
    joined into one: each joins an earlier one whose right or bottom edge it continues (in
    row order, as snapshots come, that joins strips). Order does not matter among these
    messages: each writes tiles the frame re-sends, and every Copy reads tiles it does not."""
    return _join(msgs)[0]


def _join(msgs: Iterable[wire.Copy | wire.Fill]
          ) -> tuple[list[wire.Copy | wire.Fill], list[int]]:
    """``joined``, and for each message given, the index of the one it went into."""
    out: list[wire.Copy | wire.Fill] = []
    owner: list[int] = []
    ends: dict[tuple[object, ...], int] = {}  # (kind, side, ...) -> the message ending there
    for m in msgs:
        key, (x, y, w, h) = _kind(m), _rect(m)
        for end, grow in (((key, "v", x, w, y), (0, h)), ((key, "h", y, h, x), (w, 0))):
            i = ends.get(end)
            if i is None:
                continue
            ox, oy, ow, oh = _rect(out[i])
            if end != _ends(key, ox, oy, ow, oh)[0 if end[1] == "v" else 1]:
                continue  # that message has grown since
            out[i] = _grown(out[i], ow + grow[0], oh + grow[1])
            break
        else:
            i = len(out)
            out.append(m)
        owner.append(i)
        x, y, w, h = _rect(out[i])
        for end in _ends(key, x, y, w, h):
            ends[end] = i
    return out, owner


def _kind(m: wire.Copy | wire.Fill) -> tuple[object, ...]:
    if isinstance(m, wire.Copy):
        return "copy", m.src_x - m.dst_x, m.src_y - m.dst_y
    return "fill", m.r, m.g, m.b


def _rect(m: wire.Copy | wire.Fill) -> tuple[int, int, int, int]:
    return (m.dst_x, m.dst_y, m.w, m.h) if isinstance(m, wire.Copy) else (m.x, m.y, m.w, m.h)


def _ends(key: tuple[object, ...], x: int, y: int, w: int, h: int
          ) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """Where a rectangle of that kind could join this one: below it, and right of it."""
    return (key, "v", x, w, y + h), (key, "h", y, h, x + w)


def _grown(m: wire.Copy | wire.Fill, w: int, h: int) -> wire.Copy | wire.Fill:
    if isinstance(m, wire.Copy):
        return wire.Copy(m.src_x, m.src_y, m.dst_x, m.dst_y, w, h)
    return wire.Fill(m.x, m.y, w, h, m.r, m.g, m.b)
