"""The pipeline and PALETTE tiles: a version-4 viewer gets PALETTE_PACKED tiles for few-colour
boxes (also under the watermark), a version-3 viewer is answered in version 3 and gets PALETTE
tiles instead, a version-2 viewer is answered in version 2 and never sees either, and the canvas
a viewer builds from any of these streams equals desktop + watermark."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from gateway.display.encoder import EncodeSettings
from gateway.display.framebuffer import Framebuffer
from gateway.display.pipeline import DisplayPipeline, UnsupportedVersion
from gateway.display.watermark import Watermark
from gateway.wire import display as w
from tests.display.canvas_model import CanvasModel, diff_pixels, expected, random_ops

T0 = 1_700_000_000.0


def terminal(fb: Framebuffer, rng: random.Random) -> None:
    """White background, black 'glyphs': a two-colour xterm."""
    fb.fill(0, 0, fb.width, fb.height, b"\xff\xff\xff\x00")
    for y in range(4, fb.height - 14, 17):
        for x in range(4, fb.width - 8, 9):
            if rng.random() < 0.7:
                glyph = bytes(rng.choice((0, 255)) for _ in range(8 * 13))
                fb.blit(x, y, 8, 13, b"".join(bytes((v, v, v, 0)) for v in glyph))


def run(version: int, wm: Watermark | None, seed: int = 0) -> tuple[CanvasModel, DisplayPipeline]:
    fb = Framebuffer(320, 240)
    rng = random.Random(seed)
    terminal(fb, rng)
    p = DisplayPipeline(fb, watermark=wm, settings=EncodeSettings())
    p.receive_data(w.encode(w.Resume(version, 0)), T0)
    canvas = CanvasModel()
    now = T0
    for _ in range(12):
        data = p.produce_frame(now)
        if data is not None:
            msgs = canvas.apply_bytes(data)
            p.receive(w.Ack(msgs[-1].frame_id), now)
        # typing, a scroll by X copy, a new line
        fb.blit(rng.randrange(0, 300), rng.randrange(0, 220), 8, 13, bytes(8 * 13 * 4))
        fb.copy(0, 17, 0, 0, 320, 240 - 17)
        fb.fill(0, 240 - 17, 320, 17, b"\xff\xff\xff\x00")
        random_ops(fb, rng, 2)
        now += 0.1
    data = p.produce_frame(now)
    if data is not None:
        canvas.apply_bytes(data)
    return canvas, p


def stamp() -> Watermark:
    return Watermark("{user_id}\n{time}", {"user_id": "t-0042 山田"}, font_size=11,
                     spacing=(120, 70), opacity=0.3)  # fmt: skip


@pytest.mark.parametrize(("version", "got", "not_got"), [
    (4, w.TileFormat.PALETTE_PACKED, w.TileFormat.PALETTE),
    (3, w.TileFormat.PALETTE, w.TileFormat.PALETTE_PACKED),
])
@pytest.mark.parametrize("wm", [None, "stamp"])
def test_each_version_gets_its_palette_tiles_and_an_exact_canvas(
        wm: str | None, version: int, got: w.TileFormat, not_got: w.TileFormat) -> None:
    canvas, p = run(version, stamp() if wm else None)
    assert canvas.messages[0] == w.Hello(version, 320, 240,
                                         w.HelloFlags.WATERMARKED if wm else 0)
    assert got in canvas.formats and not_got not in canvas.formats
    assert canvas.image is not None
    assert diff_pixels(canvas.image, expected(p.fb, p._layer, p._drift)) == 0


def test_version_2_viewer_gets_version_2_and_no_palette_tiles() -> None:
    canvas, p = run(2, stamp())
    assert canvas.messages[0] == w.Hello(2, 320, 240, w.HelloFlags.WATERMARKED)
    assert canvas.formats and not {w.TileFormat.PALETTE, w.TileFormat.PALETTE_PACKED} \
        & set(canvas.formats)
    assert canvas.image is not None
    assert diff_pixels(canvas.image, expected(p.fb, p._layer, p._drift)) == 0


@pytest.mark.parametrize("version", [1, 5])
def test_other_versions_are_refused(version: int) -> None:
    p = DisplayPipeline(Framebuffer(32, 32))
    with pytest.raises(UnsupportedVersion) as err:
        p.receive(w.Resume(version), T0)
    assert err.value.code == w.EndCode.UNSUPPORTED_VERSION


def test_a_stamp_adds_at_most_two_colours_to_a_text_box() -> None:
    wm = stamp()
    layer = wm.layer(320, 240, 64, T0)
    inks = {c for _, c in layer.stamp.getcolors(1 << 16) if c[3]}
    alpha = round(255 * wm.opacity)
    assert inks == {(32, 32, 32, alpha), (255, 255, 255, alpha)}  # two inks, one alpha
    fb = Framebuffer(320, 240)
    terminal(fb, random.Random(1))
    img = expected(fb, layer)
    plain = Image.frombytes("RGB", (320, 240), bytes(fb.pixels), "raw", "BGRX")
    assert len(plain.getcolors()) == 2
    assert len(img.getcolors()) <= 2 * 3  # each colour, under the dark ink, under the light ink
    assert img.tobytes() != plain.tobytes()  # the stamps are there


def test_the_first_lossless_webp_tile_does_not_load_every_pillow_plugin() -> None:
    """Pillow imports all of its plugins (Image.init, about 50 ms) on the first save in a format
    it has not loaded; the encoder registers WEBP up front, so a session's first frame does not
    pay for that (a fresh interpreter: this one's Pillow may have loaded them already)."""
    import json
    import subprocess
    import sys

    code = ("import json, sys\n"
            "from PIL import Image\n"
            "from gateway.display.encoder import encode_image\n"
            "from gateway.wire.display import TileFormat\n"
            "data = encode_image(Image.new('RGB', (64, 64), (1, 2, 3)), TileFormat.WEBP, 80)\n"
            "assert data[8:12] == b'WEBP', data[:16]\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.endswith('ImagePlugin'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "PIL.WebPImagePlugin" in loaded
    assert "PIL.TiffImagePlugin" not in loaded and len(loaded) < 10, loaded
