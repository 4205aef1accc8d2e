"""composite() blends only under the stamps, in place: the same pixels as blending the whole
region in RGBA, for regions cut anywhere across stamps (partly off the desktop too)."""

from __future__ import annotations

import os
import random

import pytest
from PIL import Image

from gateway.display.stamp_places import composite
from gateway.display.watermark import Watermark

T0 = 1_700_000_000.0


def reference(img: Image.Image, layer, x: int, y: int) -> Image.Image:  # type: ignore[no-untyped-def]
    """The old way: a desktop-sized RGBA layer, the whole region blended with it."""
    full = Image.new("RGBA", (layer.width, layer.height), (0, 0, 0, 0))
    for ox, oy in layer.origins:  # stamps never overlap
        full.paste(layer.stamp, (ox, oy))
    out = img.convert("RGBA")
    out.alpha_composite(full.crop((x, y, x + img.width, y + img.height)))
    return out.convert("RGB")


@pytest.mark.parametrize("seed", range(8))
def test_composite_equals_whole_region_blend(seed: int) -> None:
    rng = random.Random(seed)
    wm = Watermark("{user_id}\n{time}", {"user_id": "t-0042 山田"}, font_size=11,
                   spacing=(120, 70), opacity=0.4)  # fmt: skip
    layer = wm.layer(400, 300, 64, T0)
    w, h = rng.randint(1, 400), rng.randint(1, 300)
    x, y = rng.randint(0, 400 - w), rng.randint(0, 300 - h)
    img = Image.frombytes("RGB", (w, h), os.urandom(w * h * 3))
    want = reference(img, layer, x, y)
    got = composite(img.copy(), layer, x, y)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("seed", range(8))
def test_composite_in_a_box_equals_compositing_a_crop_of_it(seed: int) -> None:
    """The box form (to_rgb's per-column blend in place) gives the pixels of cutting the box
    out, blending it at its own corner, with a drift, and pasting it back; the rest untouched."""
    from gateway.display.stamp_places import composite_at

    rng = random.Random(seed)
    wm = Watermark("{user_id}\n{time}", {"user_id": "t-0042 山田"}, font_size=11,
                   spacing=(120, 70), opacity=0.4)  # fmt: skip
    layer = wm.layer(400, 300, 64, T0)
    for _ in range(20):
        w, h = rng.randint(1, 400), rng.randint(1, 300)
        x, y = rng.randint(0, 400 - w), rng.randint(0, 300 - h)
        a0, b0 = rng.randint(x, x + w - 1), rng.randint(y, y + h - 1)
        box = (a0, b0, rng.randint(a0 + 1, x + w), rng.randint(b0 + 1, y + h))
        shift = (rng.randint(-60, 60), rng.randint(-35, 35))
        img = Image.frombytes("RGB", (w, h), os.urandom(w * h * 3))
        want = img.copy()
        at = (box[0] - x, box[1] - y, box[2] - x, box[3] - y)
        want.paste(composite(want.crop(at), layer, box[0], box[1], shift), at[:2])
        assert composite(img.copy(), layer, x, y, shift, box).tobytes() == want.tobytes()
        # parts of other drifts, as a tile cut by copies holds them
        mid = (box[0] + box[2]) // 2
        where = (((box[0], box[1], mid, box[3]), shift), ((mid, box[1], box[2], box[3]), (3, -2)))
        want = img.copy()
        for (p0, q0, p1, q1), d in where:
            if p0 < p1:
                at = (p0 - x, q0 - y, p1 - x, q1 - y)
                want.paste(composite(want.crop(at), layer, p0, q0, d), at[:2])
        got = composite_at(img.copy(), layer, x, y, where, box)  # type: ignore[arg-type]
        assert got.tobytes() == want.tobytes()


def test_composite_refuses_an_image_that_shares_its_pixels() -> None:
    """It blends through Pillow's core paste, which would write into a buffer the image only
    borrows (Image.paste would have copied it first): a caller passes an image of its own."""
    layer = Watermark("{user_id}", {"user_id": "t-0042"}, spacing=(120, 70)).layer(
        400, 300, 64, T0)
    shared = bytearray(400 * 300 * 4)
    view = Image.frombuffer("RGBA", (400, 300), shared, "raw", "RGBA", 0, 1)
    assert view.readonly
    with pytest.raises(ValueError, match="owns its pixels"):
        composite(view, layer, 0, 0)
    assert not any(shared)


@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Tokyo", "Asia/Kolkata"])
def test_the_text_turns_with_the_minute_and_not_within_it(tz: str | None) -> None:
    """text() is formatted once a minute (not per frame): the same within a minute, the new
    minute at its first instant, and an earlier instant (the clock stepped back) is its own."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz) if tz else None
    wm = Watermark("{user_id} {time}", {"user_id": "t-1"}, tz=zone)
    minute = (T0 // 60 + 1) * 60

    def shown(t: float) -> str:
        wall = datetime.fromtimestamp(t, zone) if zone else datetime.fromtimestamp(t)
        return f"t-1 {wall:%Y-%m-%d %H:%M}"

    for t in (minute - 30, minute - 0.001, minute, minute + 59.999, minute - 61, minute + 60):
        assert wm.text(t) == shown(t), t
    assert wm.text(minute - 0.001) != wm.text(minute)
