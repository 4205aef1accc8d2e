"""Where a watermark layer's stamps fall on a region, and blending them in: the stamp pieces
(``places``, ``places_at``) that the C kernel gateway/display/stamp_blend.c blends while it turns
BGRX into RGBX, and Pillow's reference of that blend (``paste``, ``composite``,
``composite_at``). What the stamps say and how they are drawn is gateway.display.watermark's.

Attacker-controlled: the region's pixels (whatever the desktop shows); nothing here reads them
but Pillow's paste. Limits: every piece lies inside both the stamp and the region (``places``
clips each stamp to the box), so a blend never writes outside the image it was given.
"""

from __future__ import annotations

from PIL import Image

from gateway.display.framebuffer import Box
from gateway.display.watermark import WatermarkLayer

#: How a tile's stamps sit: the layer moved by one (dx, dy), or, for a tile whose parts show
#: the layer moved by different vectors (stamps that rode along with copies, see stamp_drift),
#: ((x0, y0, x1, y1), (dx, dy)) per part in desktop coordinates, the parts covering the tile.
TileDrift = tuple[int, int] | tuple[tuple[tuple[int, int, int, int], tuple[int, int]], ...]


#: A piece of the stamp to blend into a region: the stamp's rectangle (sx0, sy0, sx1, sy1) with
#: its top-left at (ax, ay) of the region. Pillow pastes it (``paste``), or the C kernel
#: gateway/display/stamp_blend.c blends a list of them while it turns BGRX into RGBX.
Place = tuple[int, int, int, int, int, int]


def places(layer: WatermarkLayer, x: int, y: int, w: int, h: int,
           shift: tuple[int, int] = (0, 0), box: Box | None = None) -> list[Place]:
    """The stamp pieces that blend the layer, moved by ``shift``, onto a w×h region whose
    top-left is (x, y); only inside ``box`` (x0, y0, x1, y1 in desktop coordinates, within the
    region) if given. Only the rectangles under stamps are blended: a stamp covers a few per
    cent of a region."""
    if box is None:
        box = (x, y, x + w, y + h)
    # The box, and the region's corner, in the layer's own coordinates.
    bx0, by0, bx1, by1 = box[0] - shift[0], box[1] - shift[1], box[2] - shift[0], box[3] - shift[1]
    rx, ry = x - shift[0], y - shift[1]
    if not layer.has_ink(bx0, by0, bx1 - bx0, by1 - by0):
        return []
    sw, sh = layer.stamp.size
    out = []
    for ox, oy in layer.stamps_in(bx0, by0, bx1 - bx0, by1 - by0):
        # The overlap of this stamp and the box, in stamp coordinates.
        sx0, sy0 = max(0, bx0 - ox), max(0, by0 - oy)
        out.append((sx0, sy0, min(sw, bx1 - ox), min(sh, by1 - oy), ox + sx0 - rx, oy + sy0 - ry))
    return out


def places_at(layer: WatermarkLayer, x: int, y: int, w: int, h: int, where: TileDrift,
              box: Box | None = None) -> list[Place]:
    """``places`` for a region inside one tile whose stamps sit as ``where`` says (only inside
    ``box``, desktop coordinates, if given)."""
    if box is None:
        box = (x, y, x + w, y + h)
    if not where or isinstance(where[0], int):
        return places(layer, x, y, w, h, where, box)  # type: ignore[arg-type]
    out: list[Place] = []
    for (x0, y0, x1, y1), shift in where:  # type: ignore[misc]
        a0, b0 = max(x0, box[0]), max(y0, box[1])
        a1, b1 = min(x1, box[2]), min(y1, box[3])
        if a0 < a1 and b0 < b1:
            out += places(layer, x, y, w, h, shift, (a0, b0, a1, b1))
    return out


def paste(img: Image.Image, layer: WatermarkLayer, pieces: list[Place]) -> Image.Image:
    """Blend the stamp pieces into ``img`` itself, with Pillow (stamp_blend.c's reference).

    The caller passes an image it owns (a fresh snapshot) and gets the same object back."""
    if not pieces:
        return img
    # Pillow's core crop and paste, which Image.crop and Image.paste wrap: a region in a
    # drifted tile is composited part by part, tens of times a frame, and the wrappers' checks
    # were half of each call (issue 11 part AE). The same C calls, so the same pixels.
    img.load()
    if img.readonly:  # shares memory (frombuffer): Image.paste would have copied it first
        raise ValueError("composite blends into an image that owns its pixels")
    core, dest = layer.stamp.im, img.im
    whole = (0, 0, *layer.stamp.size)
    for sx0, sy0, sx1, sy1, ax, ay in pieces:
        part = core if (sx0, sy0, sx1, sy1) == whole else core.crop((sx0, sy0, sx1, sy1))
        # The stamp as its own mask: the same pixels as alpha_composite onto an opaque image
        # (test_watermark_composite.py), without the region's round trip through RGBA.
        dest.paste(part, (ax, ay, ax + sx1 - sx0, ay + sy1 - sy0), part)
    return img


def composite(img: Image.Image, layer: WatermarkLayer | None, x: int, y: int,
              shift: tuple[int, int] = (0, 0), box: Box | None = None) -> Image.Image:
    """Blend the layer, moved by ``shift``, onto an RGB region (an image the caller owns) whose
    top-left is (x, y), in place; only inside ``box`` if given (see ``places``). A ``box``
    saves the caller cropping a part out and pasting it back (issue 11 part M: a third of
    to_rgb's time)."""
    if layer is None:
        return img
    return paste(img, layer, places(layer, x, y, img.width, img.height, shift, box))


def composite_at(img: Image.Image, layer: WatermarkLayer | None, x: int, y: int,
                 where: TileDrift, box: Box | None = None) -> Image.Image:
    """``composite`` for a region inside one tile whose stamps sit as ``where`` says (only
    inside ``box``, desktop coordinates, if given)."""
    if layer is None:
        return img
    return paste(img, layer, places_at(layer, x, y, img.width, img.height, where, box))
