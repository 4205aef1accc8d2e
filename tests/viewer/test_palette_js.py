"""The viewer's PALETTE decoder (viewer/palette.js) in Chromium: the same vectors the Python
encoder makes decode to the same pixels, hostile tile data is refused with a bounded cost, and a
PALETTE tile through the stand-in agent lands on the canvas exactly."""

from __future__ import annotations

import base64
import io
import random
import zlib

import pytest
from PIL import Image

from gateway.display import palette
from gateway.wire import display as w
from tests.fixtures.viewer import OpenViewer

pytestmark = pytest.mark.slow

DECODE = """
async ([w, h, b64, packed]) => {
  const { decodePalette } = await import("/palette.js");
  const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    const img = await decodePalette(w, h, data, packed);
    let s = "";
    for (let i = 0; i < img.data.length; i++) s += String.fromCharCode(img.data[i]);
    return { ok: btoa(s) };
  } catch (e) {
    return { error: `${e.constructor.name}: ${e.message}` };
  }
}
"""


def vector(w_: int, h: int, colors: int, seed: int) -> tuple[Image.Image, bytes]:
    rng = random.Random(seed)
    inks = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(colors)]
    img = Image.frombytes("RGB", (w_, h), bytes(b for _ in range(w_ * h) for b in rng.choice(inks)))
    data = palette.encode(img)
    assert data is not None
    return img, data


async def js_decode(page, w_: int, h: int, data: bytes,  # type: ignore[no-untyped-def]
                    packed: bool = False) -> dict[str, str]:
    return await page.evaluate(DECODE, [w_, h, base64.b64encode(data).decode(), packed])


async def test_js_decodes_the_python_vectors(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    for (w_, h, colors) in [(1, 1, 1), (7, 3, 2), (16, 18, 3), (13, 5, 4), (64, 64, 16),
                            (33, 9, 17), (120, 40, 256)]:
        img, data = vector(w_, h, colors, w_ + h + colors)
        out = await js_decode(v.page, w_, h, data)
        assert "ok" in out, out
        rgba = base64.b64decode(out["ok"])
        assert Image.frombytes("RGBA", (w_, h), rgba).convert("RGB").tobytes() == img.tobytes()
        assert set(rgba[3::4]) == {255}
    assert v.errors == []


def raw(colors: int, rows: bytes, extra: bytes = b"") -> bytes:
    return bytes((colors - 1,)) + bytes(range(3 * colors)) + zlib.compress(rows) + extra


@pytest.mark.parametrize(("w_", "h", "data", "match"), [
    (4, 1, raw(3, bytes([0b00011011])), "palette index 3 of 3"),
    (2, 1, raw(17, bytes([0, 17])), "palette index 17 of 17"),
    (64, 64, raw(2, bytes(64 * 1024 * 1024)), "inflates past its size"),  # a zlib bomb
    (8, 2, raw(2, b"\x00"), "inflates short of its size"),
    (8, 1, raw(2, b"\x00", b"junk"), "corrupt"),
    (8, 1, b"\x00\x00\x00\x00\x00\x00" + bytes(6), "no zlib stream"),
])
async def test_js_refuses_hostile_tiles(viewer_page: OpenViewer, w_: int, h: int, data: bytes,
                                        match: str) -> None:
    v = await viewer_page()
    out = await js_decode(v.page, w_, h, data)
    assert out.get("error", "").startswith("PaletteError"), out
    assert match in out["error"]


async def test_palette_tile_drawn_on_the_canvas_exactly(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    await v.start_session(64, 48, rgb=(0, 0, 0))
    img, data = vector(40, 30, 5, 1)
    await v.agent.send(w.Tile(10, 9, 40, 30, w.TileFormat.PALETTE, data))
    await v.barrier()
    url = await v.page.evaluate("document.getElementById('screen').toDataURL('image/png')")
    canvas = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    assert canvas.crop((10, 9, 50, 39)).tobytes() == img.tobytes()
    assert canvas.getpixel((9, 9)) == (0, 0, 0) and canvas.getpixel((50, 39)) == (0, 0, 0)
    assert v.errors == []


STORED = """
async ([w, h, b64]) => {
  const { decodePaletteNow } = await import("/palette.js");
  const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    const img = decodePaletteNow(w, h, data);
    if (!(img instanceof ImageData)) return { error: "not synchronous" };
    let s = "";
    for (let i = 0; i < img.data.length; i++) s += String.fromCharCode(img.data[i]);
    return { ok: btoa(s) };
  } catch (e) {
    return { error: `${e.constructor.name}: ${e.message}` };
  }
}
"""


def stored_blocks(rows: bytes, sizes: list[int], adler: int | None = None) -> bytes:
    """A zlib stream of stored blocks of the given sizes (their sum = len(rows))."""
    out, pos = bytearray(b"\x78\x01"), 0
    for i, n in enumerate(sizes):
        out += bytes((i == len(sizes) - 1,)) + n.to_bytes(2, "little")
        out += (n ^ 0xFFFF).to_bytes(2, "little")
        out += rows[pos : pos + n]
        pos += n
    return bytes(out) + (zlib.adler32(rows) if adler is None else adler).to_bytes(4, "big")


async def test_js_copies_stored_blocks_synchronously(viewer_page: OpenViewer) -> None:
    """A small tile (the gateway stores it) and a multi-block stored stream decode at once to the
    same pixels as the Python decoder."""
    v = await viewer_page()
    _, data = vector(8, 16, 4, 7)
    start = 1 + 3 * (data[0] + 1)
    assert data[start + 2] & 0x06 == 0  # the encoder stored it
    cases = [(8, 16, data)]
    rows = bytes(random.Random(8).randrange(16) * 17 for _ in range(30 * 20))  # 4-bit, 16 colours
    tile = bytes((15,)) + bytes(range(48)) + stored_blocks(rows, [0, 100, 500])
    cases.append((60, 20, tile))
    for w_, h, d in cases:
        out = await v.page.evaluate(STORED, [w_, h, base64.b64encode(d).decode()])
        assert "ok" in out, out
        rgba = base64.b64decode(out["ok"])
        assert Image.frombytes("RGBA", (w_, h), rgba).convert("RGB").tobytes() == \
            palette.decode(w_, h, d).tobytes()
    assert v.errors == []


def stored_tile(stream: bytes) -> bytes:
    return bytes((1,)) + bytes(6) + stream


ROWS = bytes(range(16))  # 16x8 of 1-bit indices: 2 bytes a row


@pytest.mark.parametrize(("data", "match"), [
    (stored_tile(stored_blocks(ROWS + bytes(65520), [65535, 1])), "inflates past its size"),
    (stored_tile(stored_blocks(ROWS[:8], [8])), "inflates short of its size"),
    (stored_tile(stored_blocks(ROWS, [16], adler=1)), "corrupt"),  # bad checksum
    (stored_tile(stored_blocks(ROWS, [16]) + b"junk"), "corrupt"),
    (stored_tile(stored_blocks(ROWS, [16])[:-6]), "corrupt"),  # truncated
    (stored_tile(b"\x78\x01\x01\x10\x00\xee\xff" + ROWS + zlib.adler32(ROWS).to_bytes(4, "big")),
     "corrupt"),  # LEN and NLEN disagree
    (stored_tile(b"\x78\x02" + stored_blocks(ROWS, [16])[2:]), "no zlib stream"),  # bad FCHECK
    (stored_tile(b"\x77\x09" + stored_blocks(ROWS, [16])[2:]), "no zlib stream"),  # CM not deflate
    (stored_tile(stored_blocks(ROWS, [8, 8])[:2] + b"\x00\x08\x00\xf7\xff" + ROWS[:8] + b"\x07"),
     "corrupt"),  # a stored block, then a block of the reserved type: left to the inflater
])
async def test_js_refuses_hostile_stored_blocks(viewer_page: OpenViewer, data: bytes,
                                                match: str) -> None:
    v = await viewer_page()
    out = await js_decode(v.page, 16, 8, data)
    assert out.get("error", "").startswith("PaletteError"), out
    assert match in out["error"]


# --- PALETTE_PACKED (wire version 4): the palette inside the zlib stream, as planar deltas ---

async def test_js_decodes_the_python_packed_vectors(viewer_page: OpenViewer) -> None:
    v = await viewer_page()
    for (w_, h, colors) in [(1, 1, 1), (7, 3, 2), (16, 18, 3), (8, 16, 4), (33, 9, 17),
                            (40, 22, 87), (120, 40, 256)]:
        img, _ = vector(w_, h, colors, w_ + h + colors)
        data = palette.encode(img, packed=True)
        assert data is not None
        out = await js_decode(v.page, w_, h, data, packed=True)
        assert "ok" in out, out
        rgba = base64.b64decode(out["ok"])
        assert Image.frombytes("RGBA", (w_, h), rgba).convert("RGB").tobytes() == img.tobytes()
    assert v.errors == []


def packed(colors: int, body: bytes, extra: bytes = b"") -> bytes:
    return bytes((colors - 1,)) + zlib.compress(body) + extra


@pytest.mark.parametrize(("w_", "h", "data", "match"), [
    (4, 1, packed(3, bytes(9) + bytes([0b00011011])), "palette index 3 of 3"),
    (64, 64, packed(2, bytes(64 * 1024 * 1024)), "inflates past its size"),  # a zlib bomb
    (4, 1, packed(3, bytes(9)), "inflates short of its size"),  # the palette, no rows
    (4, 1, packed(3, bytes(10), b"junk"), "corrupt"),
    (4, 1, b"\x02\x00\x00" + bytes(6), "no zlib stream"),
    (4, 1, b"\x02\x78\x9c", "shorter than a zlib stream"),
])
async def test_js_refuses_hostile_packed_tiles(viewer_page: OpenViewer, w_: int, h: int,
                                               data: bytes, match: str) -> None:
    v = await viewer_page()
    out = await js_decode(v.page, w_, h, data, packed=True)
    assert out.get("error", "").startswith("PaletteError"), out
    assert match in out["error"]


async def test_packed_palette_tiles_drawn_on_the_canvas_exactly(viewer_page: OpenViewer) -> None:
    """Through the stand-in agent: protocol.js takes format 5, canvas.js decodes it, and a
    small (stored) and a deflated tile land exactly."""
    v = await viewer_page()
    await v.start_session(64, 48, rgb=(0, 0, 0))
    small, _ = vector(8, 6, 5, 2)
    big, _ = vector(40, 30, 60, 3)
    for (x, y, img) in ((1, 1, small), (12, 9, big)):
        data = palette.encode(img, packed=True)
        assert data is not None
        await v.agent.send(w.Tile(x, y, *img.size, w.TileFormat.PALETTE_PACKED, data))
    await v.barrier()
    url = await v.page.evaluate("document.getElementById('screen').toDataURL('image/png')")
    canvas = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    assert canvas.crop((1, 1, 9, 7)).tobytes() == small.tobytes()
    assert canvas.crop((12, 9, 52, 39)).tobytes() == big.tobytes()
    assert canvas.getpixel((11, 9)) == (0, 0, 0) and canvas.getpixel((52, 39)) == (0, 0, 0)
    assert v.errors == []
