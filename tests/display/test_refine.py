"""Build to lossless: what went out as JPEG is re-sent lossless once it holds still."""

from __future__ import annotations

import random

import pytest

from gateway.display.encoder import EncodeSettings
from gateway.display.framebuffer import CopyOp, Framebuffer
from gateway.display.pipeline import QUALITIES, DisplayPipeline, encode_frame
from gateway.display.refine import REFINE_AFTER, REFINE_MAX_PIXELS, LossyTiles
from gateway.display.watermark import Watermark
from gateway.policy.schema import SCHEMA
from gateway.wire import display as w
from tests.display.canvas_model import CanvasModel, diff_pixels, expected

T0 = 1_700_000_000.0  # 40 s before a minute boundary: no watermark change in these tests
LATER = REFINE_AFTER + 0.5  # due


def photo(fb: Framebuffer, x: int, y: int, width: int, height: int, seed: int = 1) -> None:
    """Photo-like pixels (far more than PHOTO_COLORS colours): the encoder sends JPEG."""
    rng = random.Random(seed)
    fb.blit(x, y, width, height, rng.randbytes(width * height * 4))


def attach(fb: Framebuffer, wm: Watermark | None = None,
           quality: str = "build-to-lossless") -> tuple[DisplayPipeline, CanvasModel]:
    p = DisplayPipeline(fb, watermark=wm, settings=EncodeSettings(), quality=quality)
    p.receive(w.Resume(w.VERSION), T0)
    return p, CanvasModel()


def step(p: DisplayPipeline, canvas: CanvasModel, now: float) -> list[w.Message]:
    data = p.produce_frame(now)
    assert data is not None
    msgs = canvas.apply_bytes(data)
    p.receive(w.Ack(msgs[-1].frame_id), now + 0.005)
    return msgs


def tiles(msgs: list[w.Message], fmt: w.TileFormat | None = None) -> list[w.Tile]:
    return [m for m in msgs if isinstance(m, w.Tile) and (fmt is None or m.format is fmt)]


def wrong(p: DisplayPipeline, canvas: CanvasModel) -> int:
    assert canvas.image is not None
    return diff_pixels(canvas.image, expected(p.fb, p._layer, p._drift))


def corner_photo_sent() -> tuple[DisplayPipeline, CanvasModel]:
    """A white 256×128 desktop whose tile (0, 0) became a photo, sent as JPEG at T0 + 1."""
    fb = Framebuffer(256, 128)
    fb.fill(0, 0, 256, 128, b"\xff\xff\xff\x00")
    p, canvas = attach(fb)
    step(p, canvas, T0)
    photo(fb, 0, 0, 64, 64)
    assert tiles(step(p, canvas, T0 + 1), w.TileFormat.JPEG)
    return p, canvas


def small_watermark() -> Watermark:
    return Watermark("{user_id}\n{time}", {"user_id": "t-0042 山田"}, font_size=11,
                     spacing=(120, 70), opacity=0.5)


@pytest.mark.parametrize("wm", [None, small_watermark()], ids=["plain", "watermarked"])
def test_a_still_photo_goes_out_as_jpeg_then_lossless_once(wm: Watermark | None) -> None:
    fb = Framebuffer(320, 256)
    fb.fill(0, 0, 320, 256, b"\xf0\xf0\xf0\x00")
    p, canvas = attach(fb, wm)
    step(p, canvas, T0)  # key frame of the plain background
    photo(fb, 64, 64, 128, 128)
    sent = T0 + 1
    msgs = step(p, canvas, sent)
    assert tiles(msgs, w.TileFormat.JPEG)
    assert wrong(p, canvas) > 0  # JPEG: close, not exact

    assert p.next_timer(sent + 0.1) == pytest.approx(sent + REFINE_AFTER, abs=0.01)
    assert p.take_frame(sent + REFINE_AFTER / 2) is None  # not still long enough yet
    msgs = step(p, canvas, sent + REFINE_AFTER + 0.01)
    assert not tiles(msgs, w.TileFormat.JPEG)
    refreshed = tiles(msgs)
    assert refreshed and not [m for m in msgs if isinstance(m, w.Copy)]
    # Exactly the photo's tiles, no more: 2×2 tiles of 64 px.
    assert sum(m.w * m.h for m in refreshed) == 128 * 128
    assert wrong(p, canvas) == 0
    assert p.take_frame(sent + 5) is None  # once: nothing is left to refine
    assert p.next_timer(sent + 5) == (None if wm is None else pytest.approx(T0 + 40, abs=1e-6))


def test_policy_quality_lossy_keeps_the_jpeg() -> None:
    """display.quality = "lossy" (metered links): the photo stays JPEG however long it is
    still, and the text beside it still goes out exact."""
    fb = Framebuffer(256, 128)
    fb.fill(0, 0, 256, 128, b"\xff\xff\xff\x00")
    p, canvas = attach(fb, quality="lossy")
    step(p, canvas, T0)
    photo(fb, 0, 0, 64, 64)
    fb.fill(100, 20, 30, 10, b"\x00\x00\x00\x00")  # a few-colour box: never JPEG
    msgs = step(p, canvas, T0 + 1)
    assert tiles(msgs, w.TileFormat.JPEG)
    assert p.next_timer(T0 + 1.1) is None
    assert p.take_frame(T0 + 60) is None
    assert canvas.image is not None
    shown = expected(p.fb, p._layer, p._drift)
    assert wrong(p, canvas) > 0
    assert diff_pixels(canvas.image.crop((64, 0, 256, 128)), shown.crop((64, 0, 256, 128))) == 0


def test_policy_quality_lossless_never_sends_jpeg() -> None:
    fb = Framebuffer(256, 128)
    fb.fill(0, 0, 256, 128, b"\xff\xff\xff\x00")
    p, canvas = attach(fb, quality="lossless")
    step(p, canvas, T0)
    photo(fb, 0, 0, 128, 64)
    msgs = step(p, canvas, T0 + 1)
    assert tiles(msgs) and not tiles(msgs, w.TileFormat.JPEG)
    assert wrong(p, canvas) == 0
    assert p.next_timer(T0 + 1.1) is None


def test_an_unknown_quality_is_refused() -> None:
    with pytest.raises(ValueError, match="sharp"):
        DisplayPipeline(Framebuffer(64, 64), quality="sharp")


def test_every_quality_the_policy_accepts_is_one_the_pipeline_knows() -> None:
    """The schema spells the values out (policy does not import the display package): a value
    added there alone would fail every session that policy names, at its start."""
    rule = SCHEMA["display"]["quality"]
    assert all(rule.check(q) == q for q in QUALITIES)
    assert rule.rule.expects == "one of " + ", ".join(f'"{q}"' for q in QUALITIES)


def test_a_tile_redrawn_before_it_is_due_is_not_refreshed_twice() -> None:
    p, canvas = corner_photo_sent()
    p.fb.fill(0, 0, 64, 64, b"\x00\x00\x00\x00")  # the photo replaced by a plain box
    msgs = step(p, canvas, T0 + 1.1)
    assert not tiles(msgs, w.TileFormat.JPEG)
    assert wrong(p, canvas) == 0
    assert p.next_timer(T0 + 1.2) is None
    assert p.take_frame(T0 + 1 + LATER) is None


def test_a_small_redraw_beside_a_photo_in_its_tile_does_not_cancel_the_refresh() -> None:
    fb = Framebuffer(256, 128)
    fb.fill(0, 0, 256, 128, b"\xff\xff\xff\x00")
    p, canvas = attach(fb)
    step(p, canvas, T0)
    photo(fb, 0, 0, 40, 40)  # a thumbnail in the corner of tile (0, 0)
    assert tiles(step(p, canvas, T0 + 1), w.TileFormat.JPEG)
    fb.fill(50, 50, 8, 8, b"\x00\x00\x00\x00")  # a cursor blinks in the same tile
    step(p, canvas, T0 + 1.5)
    msgs = step(p, canvas, T0 + 1 + LATER)
    assert [(m.x, m.y, m.w, m.h) for m in tiles(msgs)] == [(0, 0, 40, 40)]
    assert wrong(p, canvas) == 0


def test_a_video_that_keeps_changing_is_not_refreshed_until_it_stops() -> None:
    fb = Framebuffer(256, 128)
    p, canvas = attach(fb)
    step(p, canvas, T0)
    now = T0 + 1
    for frame in range(10):  # 10 frames a second: never still for REFINE_AFTER
        photo(fb, 0, 0, 128, 128, seed=frame)
        msgs = step(p, canvas, now)
        assert tiles(msgs, w.TileFormat.JPEG) and not [
            m for m in tiles(msgs) if m.format is not w.TileFormat.JPEG]
        now += 0.1
    msgs = step(p, canvas, now - 0.1 + REFINE_AFTER + 0.01)
    assert not tiles(msgs, w.TileFormat.JPEG)
    assert wrong(p, canvas) == 0


def test_copied_jpeg_pixels_are_refreshed_where_they_landed() -> None:
    fb = Framebuffer(384, 256)
    fb.fill(0, 0, 384, 256, b"\x20\x40\x60\x00")
    p, canvas = attach(fb, small_watermark())
    step(p, canvas, T0)
    photo(fb, 0, 0, 128, 128)
    step(p, canvas, T0 + 1)
    fb.copy(0, 0, 200, 96, 128, 128)  # e.g. a dragged picture, not on the tile grid
    fb.fill(0, 0, 128, 128, b"\x20\x40\x60\x00")  # where it was is background again
    msgs = step(p, canvas, T0 + 1.1)
    # The desktop's copy first (stamped background it uncovered may follow as copies too).
    assert next(m for m in msgs if isinstance(m, w.Copy)) == w.Copy(0, 0, 200, 96, 128, 128)
    msgs = step(p, canvas, T0 + 1 + REFINE_AFTER + 0.01)
    refreshed = tiles(msgs)
    assert refreshed and not tiles(msgs, w.TileFormat.JPEG)
    assert all(m.x + m.w > 200 and m.y + m.h > 96 for m in refreshed)  # only where it landed
    assert wrong(p, canvas) == 0


def test_a_screen_of_photos_is_refined_a_slice_per_frame() -> None:
    fb = Framebuffer(640, 480)
    photo(fb, 0, 0, 640, 480)
    p, canvas = attach(fb)
    step(p, canvas, T0)  # the key frame: JPEG everywhere
    now, frames = T0 + REFINE_AFTER + 0.01, 0
    while (job := p.take_frame(now)) is not None:
        assert job.pixels <= REFINE_MAX_PIXELS
        data = encode_frame(job)
        p.frame_sent(job, len(data), now)
        canvas.apply_bytes(data)
        p.receive(w.Ack(job.frame_id), now + 0.005)
        frames += 1
        now += 0.02
        assert frames < 20
    assert frames == -(-640 * 480 // REFINE_MAX_PIXELS)
    assert wrong(p, canvas) == 0


def test_the_refresh_waits_for_a_pause_in_typing() -> None:
    p, canvas = corner_photo_sent()
    now = T0 + 1
    for _ in range(8):  # a key every half second, each drawing a glyph: no refresh meanwhile
        now += 0.5
        p.receive(w.Key(0x61, True), now)
        p.fb.fill(100, 100, 8, 12, b"\x00\x00\x00\x00")
        msgs = step(p, canvas, now)
        assert sum(m.w * m.h for m in tiles(msgs)) <= 8 * 12
    assert p.next_timer(now) == pytest.approx(now + REFINE_AFTER, abs=1e-6)
    assert p.take_frame(now + REFINE_AFTER - 0.1) is None
    msgs = step(p, canvas, now + REFINE_AFTER)
    assert [(m.x, m.y, m.w, m.h) for m in tiles(msgs)] == [(0, 0, 64, 64)]
    assert wrong(p, canvas) == 0


def test_a_congested_link_gets_no_refresh() -> None:
    fb = Framebuffer(256, 128)
    p, canvas = attach(fb)
    now = T0
    for frame in range(4):  # Acks 0.8 s late: the link is queueing, its JPEG quality drops
        photo(fb, 0, 0, 256, 128, seed=frame)
        data = p.produce_frame(now)
        assert data is not None
        msgs = canvas.apply_bytes(data)
        assert tiles(msgs, w.TileFormat.JPEG)
        p.receive(w.Ack(msgs[-1].frame_id), now + 0.8)
        now += 1
    assert p.settings.jpeg_quality < 80
    assert p.take_frame(now + 5) is None
    assert p.next_timer(now + 5) is None


# --- the tile map alone ---------------------------------------------------------------------


def test_marks_are_due_after_the_delay_top_to_bottom_and_capped() -> None:
    lossy = LossyTiles(64)
    lossy.mark([(0, 70, 10, 80), (130, 0, 140, 10)], T0)
    assert lossy.next_due() == pytest.approx(T0 + REFINE_AFTER, abs=1e-6)
    assert lossy.take_due(T0 + REFINE_AFTER - 0.1, 1000, 1000) == {}
    # Only the JPEG'd boxes come back, the top one first; at least one whatever the cap.
    assert lossy.take_due(T0 + LATER, 1000, 1000, max_pixels=1) == {(2, 0): (130, 0, 140, 10)}
    assert lossy.take_due(T0 + LATER, 1000, 60) == {}  # the desktop shrank: dropped
    assert lossy.sent == {}


def test_a_redraw_unmarks_a_tile_only_where_it_covers_the_jpeg() -> None:
    lossy = LossyTiles(64)
    lossy.mark([(0, 0, 40, 40)], T0)
    lossy.mark([(64, 0, 128, 64)], T0 + 1)  # a later JPEG: the later time counts
    lossy.resent({(0, 0): (50, 50, 64, 64)})  # a blinking cursor in the same tile
    assert lossy.sent == {(0, 0): (T0, (0, 0, 40, 40)), (1, 0): (T0 + 1, (64, 0, 128, 64))}
    lossy.resent({(0, 0): (0, 0, 64, 64), (1, 0): (64, 0, 100, 64)})
    assert lossy.sent == {(1, 0): (T0 + 1, (64, 0, 128, 64))}
    assert lossy.next_due() == pytest.approx(T0 + 1 + REFINE_AFTER, abs=1e-6)


def test_a_copy_moves_marks_and_clears_the_boxes_it_overwrites() -> None:
    lossy = LossyTiles(64)
    lossy.mark([(0, 0, 64, 64)], T0)
    lossy.mark([(130, 130, 180, 180)], T0 + 0.5)
    # Reads (32..64)² of tile (0, 0) and writes it at (128..160)², over tile (2, 2)'s box.
    lossy.copy(CopyOp(32, 32, 128, 128, 96, 96))
    assert lossy.sent == {(0, 0): (T0, (0, 0, 64, 64)), (2, 2): (T0, (128, 128, 160, 160))}
    lossy.copy(CopyOp(256, 256, 120, 120, 64, 64))  # unmarked pixels over (2, 2)'s box
    assert lossy.sent == {(0, 0): (T0, (0, 0, 64, 64))}
    lossy.copy(CopyOp(0, 0, 16, 16, 32, 32))  # within (0, 0): stays marked
    assert lossy.sent == {(0, 0): (T0, (0, 0, 64, 64))}
    lossy.copy(CopyOp(0, 0, 40, 70, 64, 64))  # one box moved across four tiles
    assert set(lossy.sent) == {(0, 0), (0, 1), (1, 1), (0, 2), (1, 2)}
    assert lossy.sent[(1, 2)] == (T0, (64, 128, 104, 134))
