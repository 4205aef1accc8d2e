"""Region encoding: classify damaged regions per tile column, merge, encode. Pure functions.

Attacker-controlled: pixel content (whatever the desktop shows). Limits: a merged region is at most
MAX_MERGE_PIXELS, so one encoded image stays far below the codec's MAX_TILE_DATA.

Measured on 1080p office text (docs/PERFORMANCE.md): lossless WebP is 2-5x smaller than PNG
(zlib 1 or 6) at similar speed, and costs ~105 ns/pixel on 64×64 tiles but ~35 ns/pixel on
640×64 strips, so regions are merged as large as their class allows. Effort ("quality") 10
instead of 50 cut the scrolling workload's encode time by a third for ~25 % more bytes. Text-like
content with at most PALETTE_COLORS colours (PALETTE_WIDE_COLORS in large images) goes out as a
PALETTE tile (palette + zlib, see gateway.display.palette), other text-like content as lossless
WebP; photo-like content (many colours) as JPEG at an adaptive quality; single-colour runs as a
Fill. Everything here may run in an executor thread.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from PIL import Image, WebPImagePlugin  # noqa: F401  (registers WEBP: see below)

from gateway.display import palette
from gateway.display.compiled import kernel
from gateway.display.stamp_places import Place, TileDrift, paste, places, places_at
from gateway.display.watermark import WatermarkLayer
from gateway.wire.display import Fill, Tile, TileFormat

PHOTO_COLORS = 768  # a tile column with more distinct colours than this is photo-like
# A text-like image with at most this many colours goes out as a PALETTE tile (4-bit indices +
# zlib): measured on xterm and mousepad boxes, with and without the watermark, it is 0.3-0.7x
# lossless WebP's bytes there; with more colours (antialiased text) WebP's 2-D prediction wins.
PALETTE_COLORS = 16
# Images of at least PALETTE_WIDE_PIXELS pixels (a scrolled view's new lines, a redrawn text
# line) may use up to PALETTE_WIDE_COLORS (8-bit indices): antialiased text with up to 256
# colours then costs a colour count, a lookup and zlib instead of lossless WebP, which takes
# more CPU. Small boxes keep PALETTE_COLORS, where WebP wins on bytes (a typed glyph). Part M
# (docs/PERFORMANCE.md, issue 11) chose 24576 on bytes; part AL lowered it to a whole tile on
# CPU, the aim that misses: on the recorded office mix, GTK scrolling -4.5 % CPU for +4 %
# bytes and terminal scrolling -6 % for +7 %, both still far under their bytes aims; typing,
# xterm typing and dragging unchanged. 256 colours for every size added 35-39 % to typing and
# 30 % to dragging (part M).
# PALETTE_PACKED (version-4 viewers) deflates the palette too, and has no such threshold: a
# glyph box with 17-256 colours costs about WebP's bytes there, at a third to a half of its CPU
# (part AT).
PALETTE_WIDE_PIXELS = 4096
PALETTE_WIDE_COLORS = 256
WEBP_METHOD, WEBP_EFFORT = 2, 10
# 1920×64 strips stacked up to two high: bigger images buy no speed (~35 ns/pixel from
# 640×64 up) but cost encoder memory (libwebp holds several bytes per pixel while encoding).
MAX_MERGE_PIXELS = 1920 * 128

#: The C kernel gateway/display/column_kinds.c, or None; numpy_kinds is its reference.
_column_kinds: Any = kernel("column_kinds")
#: The C kernel gateway/display/stamp_blend.c, or None; to_rgb is its reference.
_stamp_blend: Any = kernel("stamp_blend")
#: The kernel's colour hash multiplier, random per process (its answer does not depend on it).
_KINDS_MULTIPLIER = int.from_bytes(os.urandom(4), "little") | 1


@dataclass(frozen=True, slots=True)
class EncodeSettings:
    jpeg_quality: int = 80
    lossy: bool = True  # False: photo-like tiles go lossless too (tests, recordings on demand)
    lossless_format: TileFormat = TileFormat.WEBP
    # Few-colour boxes (≤ PALETTE_COLORS) go out as PALETTE tiles; only for viewers of wire
    # version ≥ 3 (the pipeline turns it off for older ones).
    palette: bool = True
    # ... as PALETTE_PACKED tiles, whose palette deflates with the indices: then boxes of any
    # size with up to PALETTE_WIDE_COLORS colours leave lossless WebP (palette_colors). Only
    # for viewers of wire version ≥ 4.
    packed_palette: bool = True


@dataclass(frozen=True, slots=True)
class RegionSnapshot:
    """The BGRX pixels of one damaged region at (x, y), w×h, copied out of the framebuffer.

    A region spans a run of damaged grid tiles in one tile row (``tile`` pixels square, aligned to
    the desktop origin); the encoder classifies each tile-column of it separately."""

    x: int
    y: int
    w: int
    h: int
    bgrx: bytes
    tile: int = 64
    lossless: bool = False  # a refresh of pixels sent as JPEG before (see refine): no JPEG now


@dataclass(slots=True)
class _Segment:
    x: int
    y: int
    w: int
    h: int
    key: tuple[object, ...]  # ("solid", rgb) | ("text",) | ("photo",)
    parts: list[bytes]  # RGBX rows (see to_rgbx) stacked top to bottom, each w wide


#: Per grid tile, how far the viewer's stamps sit from the layer's grid (see stamp_drift).
Drift = dict[tuple[int, int], TileDrift]


def to_rgb(snap: RegionSnapshot, layer: WatermarkLayer | None, drift: Drift | None = None
           ) -> Image.Image:
    """The region as an RGB image with the watermark blended in: to_rgbx's reference."""
    img = Image.frombytes("RGB", (snap.w, snap.h), snap.bgrx, "raw", "BGRX")
    return img if layer is None else paste(img, layer, _places(snap, layer, drift))


def to_rgbx(snap: RegionSnapshot, layer: WatermarkLayer | None, drift: Drift | None = None
            ) -> bytes:
    """The region's pixels with the watermark blended in, as the bytes
    ``to_rgb(...).tobytes("raw", "RGBX")`` gives; what follows reads only R, G and B.

    The C kernel gateway/display/stamp_blend.c does it in one pass (issue 11 part AI); without
    it, Pillow does (to_rgb)."""
    if _stamp_blend is None:
        return to_rgb(snap, layer, drift).tobytes("raw", "RGBX")
    if layer is None:
        return _stamp_blend.rgbx(snap.bgrx, snap.w, snap.h, b"", 0, 0, ())  # type: ignore[no-any-return]
    sw, sh = layer.stamp.size
    return _stamp_blend.rgbx(snap.bgrx, snap.w, snap.h, layer.stamp_rgba,  # type: ignore[no-any-return]
                             sw, sh, _places(snap, layer, drift))


def _places(snap: RegionSnapshot, layer: WatermarkLayer, drift: Drift | None) -> list[Place]:
    """The stamp pieces a region shows: each tile column's stamps sit as its drift says."""
    if not drift:
        return places(layer, snap.x, snap.y, snap.w, snap.h)
    t, row = snap.tile, snap.y // snap.tile  # a snapshot lies in one tile row
    cols = range(snap.x // t, (snap.x + snap.w - 1) // t + 1)
    wheres = [drift.get((col, row), (0, 0)) for col in cols]
    if isinstance(wheres[0][0], int) and wheres.count(wheres[0]) == len(wheres):
        return places(layer, snap.x, snap.y, snap.w, snap.h, wheres[0])  # type: ignore[arg-type]
    y0, y1 = snap.y, snap.y + snap.h
    out: list[Place] = []
    # Neighbouring columns at one drift share one call: a stamp across their edge is one
    # piece, not two, and blends the same pixels (issue 11 part AJ: a scrolled view's row of
    # thirty tiles beside a toolbar column at another drift took thirty calls).
    first = 0
    for i in range(1, len(wheres) + 1):
        if i < len(wheres) and wheres[i] == wheres[first] and isinstance(wheres[i][0], int):
            continue
        x0 = max(snap.x, cols[first] * t)
        x1 = min(snap.x + snap.w, (cols[i - 1] + 1) * t)
        out += places_at(layer, snap.x, snap.y, snap.w, snap.h, wheres[first], (x0, y0, x1, y1))
        first = i
    return out


def rgbx_image(rgbx: bytes, w: int, h: int) -> Image.Image:
    """An RGBX image on the bytes themselves (no copy; read-only): WebP and JPEG take it as
    they take RGB (the same output, tested)."""
    return Image.frombuffer("RGBX", (w, h), rgbx, "raw", "RGBX", 0, 1)


def rgb_image(rgbx: bytes, w: int, h: int) -> Image.Image:
    """An RGB image of RGBX bytes (the fourth byte dropped), for the numpy paths."""
    return Image.frombytes("RGB", (w, h), rgbx, "raw", "RGBX")


def classify(img: Image.Image) -> tuple[str, tuple[int, int, int] | None]:
    colors = img.getcolors(PHOTO_COLORS)
    if colors is None:
        return "photo", None
    if len(colors) == 1:
        return "solid", colors[0][1]
    return "text", None


def encode_image(img: Image.Image, fmt: TileFormat, quality: int) -> bytes:
    # WEBP is registered by the import above: else Pillow's first save of a format it has not
    # loaded imports all of its ~45 plugins (Image.init), 50 ms of a session's first frame.
    out = io.BytesIO()
    if fmt is TileFormat.JPEG:
        img.save(out, "JPEG", quality=quality)
    elif fmt is TileFormat.WEBP:
        img.save(out, "WEBP", lossless=True, method=WEBP_METHOD, quality=WEBP_EFFORT)
    else:  # PNG has no RGBX
        (img.convert("RGB") if img.mode == "RGBX" else img).save(out, "PNG", compress_level=1)
    return out.getvalue()


def encode_cursor(w: int, h: int, rgba: bytes) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGBA", (w, h), rgba).save(out, "PNG")
    return out.getvalue()


def _segments(snap: RegionSnapshot, layer: WatermarkLayer | None, lossy: bool,
              drift: Drift | None = None) -> list[_Segment]:
    """Cut a region at tile-column boundaries into runs of equal kind (and colour for solids)."""
    rgbx = to_rgbx(snap, layer, drift)
    t = snap.tile
    cuts = [snap.x, *range((snap.x // t + 1) * t, snap.x + snap.w, t), snap.x + snap.w]
    out: list[_Segment] = []
    kinds = _kinds(rgbx, snap.w, snap.h, snap.x, cuts)
    for (c0, c1), (kind, color) in zip(pairwise(cuts), kinds, strict=True):
        if kind == "photo" and not lossy:
            kind = "text"
        key: tuple[object, ...] = (kind, color) if kind == "solid" else (kind,)
        last = out[-1] if out else None
        if last is not None and last.key == key:
            last.w += c1 - c0
        else:
            out.append(_Segment(c0, snap.y, c1 - c0, snap.h, key, []))
    for seg in out:
        seg.parts.append(rgbx if seg.w == snap.w else
                         _columns(rgbx, snap.w, snap.h, seg.x - snap.x, seg.w))
    return out


def _columns(rgbx: bytes, w: int, h: int, x: int, cw: int) -> bytes:
    """Columns x … x + cw of a w×h region's RGBX bytes."""
    return np.frombuffer(rgbx, np.uint8).reshape(h, w * 4)[:, x * 4:(x + cw) * 4].tobytes()


def _kinds(rgbx: bytes, w: int, h: int, x: int, cuts: list[int]
           ) -> list[tuple[str, tuple[int, int, int] | None]]:
    """classify() of each tile column of a w×h region at column ``x`` of the desktop (columns
    between consecutive ``cuts``), from its RGBX bytes.

    The C kernel gateway/display/column_kinds.c answers for a region of at most PHOTO_COLORS
    colours in one pass over its pixels; numpy_kinds, its reference, answers otherwise (and
    where the kernel is not built)."""
    if _column_kinds is not None:
        found: list[tuple[int, int, int] | None] | None = _column_kinds.kinds(
            rgbx, w, h, [c - x for c in cuts], PHOTO_COLORS, _KINDS_MULTIPLIER)
        if found is not None:
            return [("text", None) if color is None else ("solid", color) for color in found]
    return numpy_kinds(rgb_image(rgbx, w, h), x, cuts)


def numpy_kinds(img: Image.Image, x: int, cuts: list[int]
                ) -> list[tuple[str, tuple[int, int, int] | None]]:
    """_kinds without the C kernel, and its reference.

    A region with at most PHOTO_COLORS colours has no photo-like column (a column has no more
    colours than the whole), so one count of the whole and a numpy pass for the single-colour
    columns answer for all of them; only a region with more colours is counted per column."""
    if len(cuts) == 2:
        return [classify(img)]
    if img.getcolors(PHOTO_COLORS) is None:
        return [classify(img.crop((c0 - x, 0, c1 - x, img.height))) for c0, c1 in pairwise(cuts)]
    rgb = np.asarray(img)
    h, w = rgb.shape[:2]
    starts = np.array(cuts[:-1]) - x
    firsts = rgb[0, starts]  # each column's top-left pixel
    ref = firsts[np.repeat(np.arange(len(starts)), np.diff(np.array(cuts)))].reshape(w * 3)
    # Rows reduced first: numpy ORs whole rows at a time (an inner axis of 3 is slow).
    differs = (rgb.reshape(h, w * 3) != ref).any(axis=0)
    mixed = np.logical_or.reduceat(differs, starts * 3)
    return [("text", None) if m else ("solid", (int(r), int(g), int(b)))
            for m, (r, g, b) in zip(mixed.tolist(), firsts.tolist(), strict=True)]


def encode_tiles(
    snaps: list[RegionSnapshot], layer: WatermarkLayer | None, settings: EncodeSettings,
    drift: Drift | None = None,
) -> list[Tile | Fill]:
    """Watermark, classify, merge and encode damaged regions into display messages.

    Segments of equal span and kind that touch vertically are stacked into one image while the
    area allows. Regions are taken top to bottom and a stack is encoded as soon as no later
    region can extend it, so only about two tile rows of RGB images are alive at a time (a key
    frame no longer holds a second, RGB copy of the whole desktop while it is encoded)."""
    out: list[Tile | Fill] = []
    open_: dict[tuple[object, ...], _Segment] = {}
    for snap in sorted(snaps, key=lambda s: (s.y, s.x)):
        for k in [k for k, top in open_.items() if top.y + top.h < snap.y]:
            out.append(_encode(open_.pop(k), settings))  # nothing below can touch it now
        for seg in _segments(snap, layer, settings.lossy and not snap.lossless, drift):
            k = (seg.x, seg.w, seg.key)
            top = open_.get(k)
            if top is not None and top.y + top.h == seg.y \
                    and (top.h + seg.h) * seg.w <= MAX_MERGE_PIXELS:
                top.h += seg.h
                top.parts.extend(seg.parts)
                continue
            if top is not None:
                out.append(_encode(top, settings))
            open_[k] = seg
    out.extend(_encode(seg, settings) for seg in open_.values())
    return out


def palette_colors(pixels: int, packed: bool = False) -> int:
    """How many colours a text-like image of ``pixels`` may have to go out as a PALETTE tile
    (PALETTE_PACKED: any size may have PALETTE_WIDE_COLORS)."""
    return PALETTE_WIDE_COLORS if packed or pixels >= PALETTE_WIDE_PIXELS else PALETTE_COLORS


def _encode(seg: _Segment, settings: EncodeSettings) -> Tile | Fill:
    if seg.key[0] == "solid":
        r, g, b = seg.key[1]  # type: ignore[misc]
        return Fill(seg.x, seg.y, seg.w, seg.h, r, g, b)
    rgbx = seg.parts[0] if len(seg.parts) == 1 else b"".join(seg.parts)  # equal widths
    seg.parts = []  # the stack's pixels are freed once encoded
    packed = settings.packed_palette
    data = palette.encode_rgbx(rgbx, seg.w, seg.h, palette_colors(seg.w * seg.h, packed),
                               packed) if settings.palette and seg.key[0] == "text" else None
    if data is not None:
        return Tile(seg.x, seg.y, seg.w, seg.h,
                    TileFormat.PALETTE_PACKED if packed else TileFormat.PALETTE, data)
    fmt = TileFormat.JPEG if seg.key[0] == "photo" else settings.lossless_format
    return Tile(seg.x, seg.y, seg.w, seg.h, fmt,
                encode_image(rgbx_image(rgbx, seg.w, seg.h), fmt, settings.jpeg_quality))
