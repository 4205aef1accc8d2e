"""The forensic watermark, drawn into the frames at the gateway so the viewer cannot remove it.

Attacker-controlled: nothing directly; the text fields come from the directory/policy (names may be
any Unicode) and are length-capped at MAX_FIELD. Limits: the layer holds one stamp image and its
positions (not a desktop-sized image: 8 MiB per 1080p session saved) and is rebuilt only when its
text or position changes (at most once a minute by default).

A Watermark renders a transparent *layer* the size of the desktop, with one stamp of text
repeated on a sparse brick grid, in two inks at one alpha (text under a stamp stays few-colour).
gateway.display.stamp_places blends that layer, optionally moved by a tile's drift (stamps that
rode along with a copy, see stamp_drift), onto a region before encoding; the per-tile ``ink``
boxes tell the pipeline which pixels a stamp touches (when the layer changes or a copy mixes
drifts, those are re-sent so the canvas equals framebuffer + watermark exactly).
"""

from __future__ import annotations

import hashlib
import os
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MAX_FIELD = 80
_FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # A CJK-capable font first: names and schools are usually Japanese.
    for path in _FONT_PATHS:
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


@dataclass(frozen=True, slots=True)
class WatermarkLayer:
    """An immutable rendering: the RGBA ``stamp`` drawn at each of ``origins`` (top-left corners,
    possibly off-desktop) on a width × height desktop; ``ink`` lists the (col, row) tiles of size
    ``tile`` where any pixel has non-zero alpha. Stamps never overlap."""

    key: tuple[object, ...]
    width: int
    height: int
    tile: int
    stamp: Image.Image = field(repr=False)
    origins: tuple[tuple[int, int], ...]
    ink: frozenset[tuple[int, int]]
    #: Per inked tile, the bounding box (x0, y0, x1, y1) of its ink in desktop coordinates;
    #: also for tiles up to one pitch off the desktop (negative indices too), where stamps that
    #: rode along with a copy are looked up (the layer moved by a drift).
    ink_boxes: dict[tuple[int, int], tuple[int, int, int, int]] = field(default_factory=dict,
                                                                        repr=False)
    #: The grid's step (x, y): a stamp's drift past it leaves rows or columns of the screen bare.
    pitch: tuple[int, int] = (0, 0)
    #: The stamp's RGBA bytes, for gateway/display/stamp_blend.c (taken once per layer).
    stamp_rgba: bytes = field(default=b"", repr=False, compare=False)
    #: The origins sorted top to bottom, and their rows: stamps_in bisects them.
    _by_row: tuple[tuple[int, int], ...] = field(default=(), init=False, repr=False,
                                                 compare=False)
    _rows: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.stamp_rgba:
            object.__setattr__(self, "stamp_rgba", self.stamp.tobytes())
        by_row = tuple(sorted(self.origins, key=lambda o: o[1]))
        object.__setattr__(self, "_by_row", by_row)
        object.__setattr__(self, "_rows", tuple(oy for _, oy in by_row))

    def ink_in(self, x: int, y: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
        """Ink boxes clipped to a rectangle (empty where the rectangle has no ink)."""
        t, out = self.tile, []
        for ty in range(y // t, (y + h - 1) // t + 1):
            for tx in range(x // t, (x + w - 1) // t + 1):
                b = self.ink_boxes.get((tx, ty))
                if b is not None:
                    c = (max(b[0], x), max(b[1], y), min(b[2], x + w), min(b[3], y + h))
                    if c[0] < c[2] and c[1] < c[3]:
                        out.append(c)
        return out

    def has_ink(self, x: int, y: int, w: int, h: int) -> bool:
        t, ink = self.tile, self.ink_boxes
        columns = range(x // t, (x + w - 1) // t + 1)
        for ty in range(y // t, (y + h - 1) // t + 1):
            for tx in columns:  # loops, not any() over a generator: half the time
                if (tx, ty) in ink:
                    return True
        return False

    def stamps_in(self, x: int, y: int, w: int, h: int) -> list[tuple[int, int]]:
        """Origins of the stamps whose box overlaps the rectangle."""
        sw, sh = self.stamp.size
        # Only the stamps whose row can reach the rectangle (y - sh < oy < y + h) are looked
        # at: a region is one or two of a layer's ~20 rows of stamps (issue 11 part AI).
        rows = self._by_row[bisect_right(self._rows, y - sh):bisect_left(self._rows, y + h)]
        return [(ox, oy) for ox, oy in rows if ox < x + w and x < ox + sw]


class Watermark:
    """Template fields: any key of ``fields`` plus ``{time}`` (the wall time, minute precision).

    ``opacity`` 0..1 scales the stamp's alpha; ``move_every`` (seconds, 0 = never) shifts the grid
    to a new pseudo-random offset so the stamps do not sit still forever.
    """

    def __init__(
        self,
        template: str = "{user_id} {name}\n{school}\n{time}  {session}",
        fields: Mapping[str, str] | None = None,
        *,
        opacity: float = 0.22,
        font_size: int = 15,
        spacing: tuple[int, int] = (480, 300),
        angle: float = 18.0,
        move_every: float = 0.0,
        time_format: str = "%Y-%m-%d %H:%M",
        tz: tzinfo | None = None,
    ) -> None:
        self.template = template
        self.fields = {k: str(v)[:MAX_FIELD] for k, v in (fields or {}).items()}
        self.opacity = min(max(opacity, 0.0), 1.0)
        self.font_size = font_size
        self.spacing = spacing
        self.angle = angle
        self.move_every = move_every
        self.time_format = time_format
        self.tz = tz
        self._cache: WatermarkLayer | None = None
        self._stamp_cache: tuple[str, Image.Image] | None = None
        # Ink boxes per stamp phase (see _ink_phase), for one (text, tile) at a time.
        self._phase_key: tuple[str, int] | None = None
        self._phases: dict[tuple[int, int], list[tuple[int, int, tuple[int, int, int, int]]]] = {}
        self._text: tuple[float, str] | None = None  # (minute, text) of the last text()

    def text(self, now: float) -> str:
        """The stamp's text at ``now``; formatted once a minute (time_format's finest field is
        the minute, as next_change assumes), not for every frame."""
        minute = now // 60
        if self._text is not None and self._text[0] == minute:
            return self._text[1]
        wall = datetime.fromtimestamp(now, self.tz) if self.tz else datetime.fromtimestamp(now)
        text = self.template.format_map(_Fields(self.fields, time=wall.strftime(self.time_format)))
        self._text = (minute, text)
        return text

    def next_change(self, now: float) -> float:
        """When the layer may change next (the minute boundary, or the next move)."""
        nxt = (now // 60 + 1) * 60
        if self.move_every > 0:
            nxt = min(nxt, (now // self.move_every + 1) * self.move_every)
        return nxt

    def layer(self, width: int, height: int, tile: int, now: float, shift: int = 0
              ) -> WatermarkLayer:
        """The layer at ``now``; ``shift`` moves the grid down by that many pixels (the pipeline
        no longer does: stamps ride along with scrolls instead, see stamp_drift)."""
        text = self.text(now)
        slot = int(now // self.move_every) if self.move_every > 0 else 0
        key = (width, height, tile, text, slot, shift)
        if self._cache is None or self._cache.key != key:
            self._cache = self._render(key, width, height, tile, text, slot, shift)
        return self._cache

    def _stamp(self, text: str) -> Image.Image:
        if self._stamp_cache is None or self._stamp_cache[0] != text:
            self._stamp_cache = (text, self._draw_stamp(text))
        return self._stamp_cache[1]

    def _draw_stamp(self, text: str) -> Image.Image:
        font = _font(self.font_size)
        probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
        box = probe.multiline_textbbox((0, 0), text, font=font, stroke_width=1, spacing=4)
        img = Image.new("RGBA", (box[2] - box[0] + 4, box[3] - box[1] + 4), (0, 0, 0, 0))
        a = round(255 * self.opacity)
        # Dark text with a light outline stays legible on both light and dark desktops.
        ImageDraw.Draw(img).multiline_text(
            (2 - box[0], 2 - box[1]), text, font=font, fill=(32, 32, 32, a),
            stroke_width=1, stroke_fill=(255, 255, 255, a), spacing=4,
        )  # fmt: skip
        if self.angle:
            img = img.rotate(self.angle, resample=Image.Resampling.BICUBIC, expand=True)
        return _two_inks(img, a)

    def _render(
        self, key: tuple[object, ...], width: int, height: int, tile: int, text: str, slot: int,
        shift: int,
    ) -> WatermarkLayer:
        stamp = self._stamp(text)
        sx = max(self.spacing[0], stamp.width + 32)
        sx += sx % 2  # even: (sx/2, sy) is then a period of the brick grid (stamp_drift)
        sy = max(self.spacing[1], stamp.height + 16)
        seed = hashlib.sha256(f"{text}|{slot}".encode()).digest() if slot else bytes(4)
        ox, oy = seed[0] * sx // 256, seed[1] * sy // 256
        base = oy + shift  # the brick pattern repeats every two rows of stamps
        # Stamps up to one pitch past every edge: a drifted tile (stamp_drift) shows the layer
        # moved by at most half a pitch, so it may show those.
        origins = tuple(
            (x, y)
            for y in range(base % (2 * sy) - 4 * sy, height + sy, sy)
            # brick pattern: odd rows offset by half a step
            for x in range(ox - 3 * sx + (sx // 2) * ((y - base) // sy % 2), width + sx, sx)
            if x + stamp.width > -sx and y + stamp.height > -sy
        )
        boxes: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        for x, y in origins:
            tiles = _tiles(x, y, stamp.width, stamp.height, width, height, tile, sx, sy)
            if not tiles:
                continue
            (tx0, ty0), (tx1, ty1) = tiles[0], tiles[-1]
            bx, by = x // tile, y // tile
            for rx, ry, (b0, b1, b2, b3) in self._ink_phase(text, stamp, tile, x % tile, y % tile):
                tx, ty = bx + rx, by + ry
                if not (tx0 <= tx <= tx1 and ty0 <= ty <= ty1):
                    continue
                b = (b0 + x, b1 + y, b2 + x, b3 + y)
                old = boxes.get((tx, ty))
                boxes[(tx, ty)] = b if old is None else (min(old[0], b[0]), min(old[1], b[1]),
                                                         max(old[2], b[2]), max(old[3], b[3]))
        on_desktop = frozenset((tx, ty) for tx, ty in boxes
                               if 0 <= tx * tile < width and 0 <= ty * tile < height)
        return WatermarkLayer(key, width, height, tile, stamp, origins, on_desktop, boxes,
                              (sx, sy))


    def _ink_phase(self, text: str, stamp: Image.Image, tile: int, px: int, py: int
                   ) -> list[tuple[int, int, tuple[int, int, int, int]]]:
        """A stamp whose top-left sits (px, py) into a tile: per tile it touches, (column,
        row) relative to that tile and the bounding box of its ink relative to the stamp's
        corner. Cached per phase: a layer places tens of stamps at a handful of phases, and a
        layer re-rendered with the grid moved (``shift``, or a new minute's text of the same
        size) reuses them."""
        if self._phase_key != (text, tile):
            self._phase_key, self._phases = (text, tile), {}
        found = self._phases.get((px, py))
        if found is None:
            alpha = stamp.getchannel("A")
            found = []
            for ry in range(0, (py + stamp.height - 1) // tile + 1):
                for rx in range(0, (px + stamp.width - 1) // tile + 1):
                    box = (max(rx * tile, px) - px, max(ry * tile, py) - py,
                           min((rx + 1) * tile, px + stamp.width) - px,
                           min((ry + 1) * tile, py + stamp.height) - py)
                    b = alpha.crop(box).getbbox()
                    if b:
                        found.append((rx, ry, (b[0] + box[0], b[1] + box[1],
                                               b[2] + box[0], b[3] + box[1])))
            self._phases[(px, py)] = found
        return found


def changed_box(old: WatermarkLayer, new: WatermarkLayer) -> tuple[int, int, int, int] | None:
    """Where, within a stamp, ``new`` differs from ``old`` when both put the same-sized stamp at
    the same origins of the same desktop (a new minute's time, digits of equal width): the
    bounding box of the differing pixels, (0, 0, 0, 0) if none. None when the grid changed
    (another size, pitch, origins or desktop): then every stamp must be re-sent."""
    if (old.width, old.height, old.tile, old.pitch, old.origins, old.stamp.size) != \
            (new.width, new.height, new.tile, new.pitch, new.origins, new.stamp.size):
        return None
    differs = (np.asarray(old.stamp) != np.asarray(new.stamp)).any(axis=2)
    ys, xs = np.nonzero(differs)
    if not len(xs):
        return (0, 0, 0, 0)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _tiles(x: int, y: int, w: int, h: int, width: int, height: int, tile: int, mx: int, my: int
           ) -> list[tuple[int, int]]:
    """Tiles of the desktop grown by (mx, my) on every side that a rectangle touches."""
    x0, y0 = max(-mx, x), max(-my, y)
    x1, y1 = min(width + mx, x + w), min(height + my, y + h)
    if x0 >= x1 or y0 >= y1:
        return []
    return [(tx, ty) for ty in range(y0 // tile, (y1 - 1) // tile + 1)
            for tx in range(x0 // tile, (x1 - 1) // tile + 1)]


def _two_inks(img: Image.Image, alpha: int) -> Image.Image:
    """Snap the stamp to two inks at one alpha: dark (32, 32, 32) and light (255, 255, 255).

    Antialiasing and rotation leave dozens of alpha and grey levels at the edges; blended over a
    text box each would add its own colours, so a two-colour glyph box under a stamp became a
    hundred-colour one and no longer fit a small palette. With two inks a stamp adds at most two
    colours per background colour. Pixels under half the stamp's alpha become transparent."""
    px = np.asarray(img, np.uint8)
    keep = px[..., 3].astype(np.uint16) * 2 > alpha
    luma = px[..., :3].astype(np.uint16).sum(axis=2)
    out = np.zeros_like(px)
    out[keep & (luma < 3 * 144)] = (32, 32, 32, alpha)
    out[keep & (luma >= 3 * 144)] = (255, 255, 255, alpha)
    return Image.fromarray(out, "RGBA")


class _Fields(dict[str, str]):
    """format_map helper: unknown placeholders render empty instead of raising."""

    def __init__(self, base: Mapping[str, str], **extra: str) -> None:
        super().__init__(base, **extra)

    def __missing__(self, key: str) -> str:
        return ""
