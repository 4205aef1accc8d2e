"""Tile encoding: classify damaged tiles, merge neighbours, encode. Pure functions of bytes.

Attacker-controlled: pixel content (whatever the desktop shows). Limits: a merged region is at most
MAX_MERGE_PIXELS, so one encoded image stays far below the codec's MAX_TILE_DATA.

Measured on text (Noto 14 px, 1024×512, see docs/PROTOCOL.md): lossless WebP (method 2) is about
3× smaller than PNG per 64×64 tile and 20× smaller on merged regions at similar speed, so text-like
content goes out as lossless WebP; photo-like content (many colours) as JPEG at an adaptive
quality; single-colour tiles as a Fill. Everything here may run in an executor thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from gateway.display.watermark import WatermarkLayer, composite
from gateway.wire.display import Fill, Tile, TileFormat

PHOTO_COLORS = 768  # a 64×64 tile with more distinct colours than this is photo-like
MAX_MERGE_PIXELS = 1024 * 512


@dataclass(frozen=True, slots=True)
class EncodeSettings:
    jpeg_quality: int = 80
    lossy: bool = True  # False: photo-like tiles go lossless too (tests, recordings on demand)
    lossless_format: TileFormat = TileFormat.WEBP


@dataclass(frozen=True, slots=True)
class TileSnapshot:
    """The BGRX pixels of one grid tile (col, row) at (x, y), w×h, copied out of the framebuffer."""

    col: int
    row: int
    x: int
    y: int
    w: int
    h: int
    bgrx: bytes


@dataclass(frozen=True, slots=True)
class _Region:
    x: int
    y: int
    w: int
    h: int
    kind: str  # "solid" | "text" | "photo"
    color: tuple[int, int, int] | None


def to_rgb(snap: TileSnapshot, layer: WatermarkLayer | None) -> Image.Image:
    img = Image.frombytes("RGB", (snap.w, snap.h), snap.bgrx, "raw", "BGRX")
    return composite(img, layer, snap.x, snap.y)


def classify(img: Image.Image) -> tuple[str, tuple[int, int, int] | None]:
    colors = img.getcolors(PHOTO_COLORS)
    if colors is None:
        return "photo", None
    if len(colors) == 1:
        return "solid", colors[0][1]
    return "text", None


def encode_image(img: Image.Image, fmt: TileFormat, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt is TileFormat.JPEG:
        img.save(out, "JPEG", quality=quality)
    elif fmt is TileFormat.WEBP:
        img.save(out, "WEBP", lossless=True, method=2, quality=50)
    else:
        img.save(out, "PNG", compress_level=1)
    return out.getvalue()


def encode_cursor(w: int, h: int, rgba: bytes) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGBA", (w, h), rgba).save(out, "PNG")
    return out.getvalue()


def _merge(cells: dict[tuple[int, int], tuple[str, object, TileSnapshot]]) -> list[list[list]]:
    """Group cells into rectangles of equal kind (and colour, for solids): horizontal runs in a
    row, then runs with the same span stacked vertically while the area allows."""
    open_rects: dict[tuple[int, int, object], list] = {}
    done: list[list] = []
    for row in sorted({r for _, r in cells}):
        cols = sorted(c for c, r in cells if r == row)
        runs: list[list] = []
        for c in cols:
            kind, key, snap = cells[(c, row)]
            last = runs[-1] if runs else None
            if last and last[1] == c - 1 and last[2] == (kind, key):
                last[1] = c
                last[3].append(snap)
            else:
                runs.append([c, c, (kind, key), [snap]])
        still_open: dict[tuple[int, int, object], list] = {}
        for c0, c1, kk, snaps in runs:
            rect = open_rects.pop((c0, c1, kk), None)
            width = sum(s.w for s in snaps)
            if rect and rect[4] == row - 1 and (rect[5] + snaps[0].h) * width <= MAX_MERGE_PIXELS:
                rect[3].append(snaps)
                rect[4], rect[5] = row, rect[5] + snaps[0].h
            else:
                if rect:
                    done.append(rect)
                rect = [c0, c1, kk, [snaps], row, snaps[0].h]
            still_open[(c0, c1, kk)] = rect
        done.extend(open_rects.values())
        open_rects = still_open
    done.extend(open_rects.values())
    return done


def encode_tiles(
    snaps: list[TileSnapshot], layer: WatermarkLayer | None, settings: EncodeSettings
) -> list[Tile | Fill]:
    """Watermark, classify, merge and encode damaged tiles into display messages."""
    images: dict[tuple[int, int], Image.Image] = {}
    cells: dict[tuple[int, int], tuple[str, object, TileSnapshot]] = {}
    for s in snaps:
        img = to_rgb(s, layer)
        kind, color = classify(img)
        if kind == "photo" and not settings.lossy:
            kind = "text"
        images[(s.col, s.row)] = img
        cells[(s.col, s.row)] = (kind, color, s)
    out: list[Tile | Fill] = []
    for _c0, _c1, (kind, color), rows, _last, height in _merge(cells):
        first = rows[0][0]
        width = sum(s.w for s in rows[0])
        if kind == "solid":
            r, g, b = color  # type: ignore[misc]
            out.append(Fill(first.x, first.y, width, height, r, g, b))
            continue
        if len(rows) == 1 and len(rows[0]) == 1:
            img = images[(first.col, first.row)]
        else:
            img = Image.new("RGB", (width, height))
            for row in rows:
                for s in row:
                    img.paste(images[(s.col, s.row)], (s.x - first.x, s.y - first.y))
        fmt = TileFormat.JPEG if kind == "photo" else settings.lossless_format
        data = encode_image(img, fmt, settings.jpeg_quality)
        out.append(Tile(first.x, first.y, width, height, fmt, data))
    return out
