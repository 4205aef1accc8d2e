"""composite() blends only under the stamps, in place: the same pixels as blending the whole
region in RGBA, for regions cut anywhere across stamps (partly off the desktop too)."""

from __future__ import annotations

import os
import random

import pytest
from PIL import Image

from gateway.display.watermark import Watermark, composite

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
