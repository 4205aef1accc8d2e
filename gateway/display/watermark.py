"""The forensic watermark, drawn into the frames at the gateway so the viewer cannot remove it.

Attacker-controlled: nothing directly; the text fields come from the directory/policy (names may be
any Unicode) and are length-capped at MAX_FIELD. Limits: the rendered layer is desktop-sized and
rebuilt only when its text or position changes (at most once a minute by default).

A Watermark renders a transparent RGBA *layer* the size of the desktop, with one stamp of text
repeated on a sparse brick grid. ``composite`` blends that layer onto a region before encoding; the
per-tile ``ink`` set tells the pipeline which tiles a stamp touches (after a copy, and when the
layer changes, those tiles are re-sent so the canvas equals framebuffer + watermark exactly).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache

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
    """An immutable rendering: ``image`` is RGBA (width × height); ``ink`` lists the (col, row)
    tiles of size ``tile`` where any pixel has non-zero alpha."""

    key: tuple[object, ...]
    width: int
    height: int
    tile: int
    image: Image.Image = field(repr=False)
    ink: frozenset[tuple[int, int]]

    def has_ink(self, x: int, y: int, w: int, h: int) -> bool:
        t = self.tile
        return any(
            (tx, ty) in self.ink
            for ty in range(max(0, y) // t, (y + h - 1) // t + 1)
            for tx in range(max(0, x) // t, (x + w - 1) // t + 1)
        )


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

    def text(self, now: float) -> str:
        wall = datetime.fromtimestamp(now, self.tz) if self.tz else datetime.fromtimestamp(now)
        return self.template.format_map(_Fields(self.fields, time=wall.strftime(self.time_format)))

    def next_change(self, now: float) -> float:
        """When the layer may change next (the minute boundary, or the next move)."""
        nxt = (now // 60 + 1) * 60
        if self.move_every > 0:
            nxt = min(nxt, (now // self.move_every + 1) * self.move_every)
        return nxt

    def layer(self, width: int, height: int, tile: int, now: float) -> WatermarkLayer:
        text = self.text(now)
        slot = int(now // self.move_every) if self.move_every > 0 else 0
        key = (width, height, tile, text, slot)
        if self._cache is None or self._cache.key != key:
            self._cache = self._render(key, width, height, tile, text, slot)
        return self._cache

    def _stamp(self, text: str) -> Image.Image:
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
        return img

    def _render(
        self, key: tuple[object, ...], width: int, height: int, tile: int, text: str, slot: int
    ) -> WatermarkLayer:
        stamp = self._stamp(text)
        sx = max(self.spacing[0], stamp.width + 32)
        sy = max(self.spacing[1], stamp.height + 16)
        seed = hashlib.sha256(f"{text}|{slot}".encode()).digest() if slot else bytes(4)
        ox, oy = seed[0] * sx // 256, seed[1] * sy // 256
        layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        for row, y in enumerate(range(oy - sy, height, sy)):
            shift = (sx // 2) * (row % 2)  # brick pattern: rows offset by half a step
            for x in range(ox - sx + shift, width, sx):
                layer.paste(stamp, (x, y))  # stamps never overlap, so a plain paste is exact
        alpha = layer.getchannel("A")
        ink = frozenset(
            (tx, ty)
            for ty in range(-(-height // tile))
            for tx in range(-(-width // tile))
            if alpha.crop((tx * tile, ty * tile, (tx + 1) * tile, (ty + 1) * tile)).getbbox()
        )
        return WatermarkLayer(key, width, height, tile, layer, ink)


class _Fields(dict[str, str]):
    """format_map helper: unknown placeholders render empty instead of raising."""

    def __init__(self, base: Mapping[str, str], **extra: str) -> None:
        super().__init__(base, **extra)

    def __missing__(self, key: str) -> str:
        return ""


def composite(img: Image.Image, layer: WatermarkLayer | None, x: int, y: int) -> Image.Image:
    """Blend the layer onto an RGB region whose top-left is (x, y) on the desktop."""
    if layer is None or not layer.has_ink(x, y, img.width, img.height):
        return img
    part = layer.image.crop((x, y, x + img.width, y + img.height))
    return Image.alpha_composite(img.convert("RGBA"), part).convert("RGB")
