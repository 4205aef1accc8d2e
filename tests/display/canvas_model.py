"""A reference viewer in Python: applies display messages to a Pillow canvas, as canvas.js does."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from gateway.display.framebuffer import Framebuffer
from gateway.display.palette import tile_image
from gateway.display.stamp_places import TileDrift, composite, composite_at
from gateway.display.watermark import WatermarkLayer
from gateway.wire import display as w


class CanvasModel:
    def __init__(self) -> None:
        self.image: Image.Image | None = None
        self.synced: list[int] = []
        self.formats: list[w.TileFormat] = []
        self.messages: list[w.Message] = []
        self.cursor: w.Cursor | None = None

    def apply_bytes(self, data: bytes) -> list[w.Message]:
        msgs = w.decode_all(data, w.Direction.TO_VIEWER)
        for m in msgs:
            self.apply(m)
        return msgs

    def apply(self, m: w.Message) -> None:
        self.messages.append(m)
        match m:
            case w.Hello(width=wd, height=ht) | w.Resize(width=wd, height=ht):
                self.image = Image.new("RGB", (wd, ht))
            case w.Fill(x=x, y=y, w=wd, h=ht, r=r, g=g, b=b):
                assert self.image is not None
                self.image.paste((r, g, b), (x, y, x + wd, y + ht))
            case w.Tile(x=x, y=y, w=wd, h=ht, format=f, data=data):
                assert self.image is not None
                tile = tile_image(f, wd, ht, data)
                assert tile.size == (wd, ht)
                self.formats.append(f)
                self.image.paste(tile, (x, y))
            case w.Copy(src_x=sx, src_y=sy, dst_x=dx, dst_y=dy, w=wd, h=ht):
                assert self.image is not None
                self.image.paste(self.image.crop((sx, sy, sx + wd, sy + ht)), (dx, dy))
            case w.Cursor():
                self.cursor = m
            case w.Sync(frame_id=fid):
                self.synced.append(fid)


def expected(fb: Framebuffer, layer: WatermarkLayer | None,
             drift: dict[tuple[int, int], TileDrift] | None = None) -> Image.Image:
    """The desktop plus the watermark as the viewer should show it: per tile, the layer moved
    by that tile's drift (stamps that rode along with copies; pipeline._drift)."""
    img = Image.frombytes("RGB", (fb.width, fb.height), bytes(fb.pixels), "raw", "BGRX")
    if not drift:
        return composite(img, layer, 0, 0)
    for ty in range(fb.rows):
        for tx in range(fb.cols):
            x, y, w, h = fb.tile_rect(tx, ty)
            part = composite_at(img.crop((x, y, x + w, y + h)), layer, x, y,
                                drift.get((tx, ty), (0, 0)))
            img.paste(part, (x, y))
    return img


def diff_pixels(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size
    return int((np.asarray(a.convert("RGB")) != np.asarray(b.convert("RGB"))).any(axis=2).sum())


def random_ops(fb: Framebuffer, rng: random.Random, n: int) -> None:
    """n random fills, text-like blits and copies (damage and copies interleaved)."""
    for _ in range(n):
        op = rng.random()
        w_, h_ = rng.randint(1, 120), rng.randint(1, 90)
        x, y = rng.randint(0, fb.width - w_), rng.randint(0, fb.height - h_)
        if op < 0.35:
            fb.fill(x, y, w_, h_, bytes(rng.randrange(256) for _ in range(3)) + b"\0")
        elif op < 0.6:
            # text-like: few colours, so it stays lossless even with lossy on
            data = bytes(rng.choice((0, 255)) for _ in range(w_ * h_))
            fb.blit(x, y, w_, h_, b"".join(bytes((v, v, v, 0)) for v in data))
        else:
            sx, sy = rng.randint(0, fb.width - w_), rng.randint(0, fb.height - h_)
            fb.copy(sx, sy, x, y, w_, h_)

