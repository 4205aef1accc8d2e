"""Pipeline: emitted messages applied to a reference canvas equal framebuffer + watermark."""

from __future__ import annotations

import random

import pytest

from gateway.display.encoder import EncodeSettings
from gateway.display.framebuffer import MAX_PENDING_COPIES, Framebuffer
from gateway.display.pacing import frame_gap
from gateway.display.pipeline import (
    DisplayPipeline,
    SessionInfo,
    UnsupportedVersion,
    ViewerMisbehaved,
    encode_frame,
)
from gateway.display.viewer_actions import KeyInput, PointerInput, Reply
from gateway.display.watermark import Watermark
from gateway.wire import display as w
from tests.display.canvas_model import CanvasModel, diff_pixels, expected, random_ops

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: 40 s before a minute boundary
LOSSLESS = EncodeSettings(lossy=False)


def small_watermark(**kw) -> Watermark:
    return Watermark(
        "{user_id}\n{time}", {"user_id": "t-0042 山田"}, font_size=11, spacing=(120, 70),
        opacity=0.5, **kw,
    )  # fmt: skip


def attach(
    fb: Framebuffer, wm: Watermark | None = None, **kw
) -> tuple[DisplayPipeline, CanvasModel]:
    p = DisplayPipeline(fb, watermark=wm, settings=kw.pop("settings", LOSSLESS), **kw)
    p.receive_data(w.encode(w.Resume(w.VERSION, 0)), T0)
    canvas = CanvasModel()
    return p, canvas


def step(p: DisplayPipeline, canvas: CanvasModel, now: float) -> list[w.Message]:
    data = p.produce_frame(now)
    assert data is not None
    msgs = canvas.apply_bytes(data)
    assert isinstance(msgs[-1], w.Sync)
    p.receive(w.Ack(msgs[-1].frame_id), now + 0.01)
    return msgs


def assert_canvas_exact(p: DisplayPipeline, canvas: CanvasModel) -> None:
    assert canvas.image is not None
    assert diff_pixels(canvas.image, expected(p.fb, p._layer, p._drift)) == 0


def test_key_frame_is_hello_then_tiles_then_sync_and_exact() -> None:
    fb = Framebuffer(300, 200)
    fb.fill(0, 0, 300, 200, b"\x10\x20\x30\x00")
    fb.fill(10, 10, 50, 50, b"\xff\xff\xff\x00")
    p, canvas = attach(fb, small_watermark(), session=SessionInfo("sess-1", "東小学校"))
    msgs = step(p, canvas, T0)
    assert msgs[0] == w.Hello(w.VERSION, 300, 200, w.HelloFlags.WATERMARKED, "sess-1", "東小学校")
    assert msgs[-1] == w.Sync(1, int(T0 * 1000))
    assert_canvas_exact(p, canvas)


def test_no_frame_before_resume_and_none_without_damage() -> None:
    fb = Framebuffer(128, 128)
    p = DisplayPipeline(fb)
    assert p.take_frame(T0) is None
    p.receive(w.Resume(w.VERSION), T0)
    assert p.produce_frame(T0) is not None
    p.receive(w.Ack(1), T0)
    assert p.produce_frame(T0 + 1) is None


@pytest.mark.parametrize("seed", range(6))
def test_interleaved_damage_and_copies_stay_pixel_exact(seed: int) -> None:
    rng = random.Random(seed)
    fb = Framebuffer(320, 240)
    random_ops(fb, rng, 5)
    p, canvas = attach(fb, small_watermark() if seed % 2 else None)
    step(p, canvas, T0)
    for frame in range(6):
        random_ops(fb, rng, rng.randint(1, 12))
        step(p, canvas, T0 + frame)
        assert_canvas_exact(p, canvas)


def test_scroll_is_sent_as_a_copy_and_only_stamped_tiles_are_resent() -> None:
    fb = Framebuffer(1024, 640)
    fb.fill(0, 0, 1024, 640, b"\xff\xff\xff\x00")
    rng = random.Random(1)
    for y in range(0, 640, 16):  # "text lines"
        fb.fill(8, y + 4, rng.randint(100, 1000), 8, b"\x00\x00\x00\x00")
    wm = Watermark(fields={"user_id": "t-0042", "name": "山田 花子", "school": "東小学校"})
    p, canvas = attach(fb, wm, settings=EncodeSettings())
    step(p, canvas, T0)
    fb.copy(0, 16, 0, 0, 1024, 624)  # scroll up by one line
    fb.fill(0, 624, 1024, 16, b"\xff\xff\xff\x00")
    msgs = step(p, canvas, T0 + 1)
    assert msgs[0] == w.Copy(0, 16, 0, 0, 1024, 624)
    tiles = [m for m in msgs if isinstance(m, w.Tile | w.Fill)]
    resent = sum(m.w * m.h for m in tiles)
    assert resent < 0.5 * 1024 * 640
    assert_canvas_exact(p, canvas)


def test_without_watermark_a_scroll_resends_only_the_new_line() -> None:
    fb = Framebuffer(640, 448)
    fb.fill(0, 0, 640, 448, b"\xff\xff\xff\x00")
    for y in range(0, 448, 16):
        fb.fill(8, y + 4, 300 + y, 8, b"\x00\x00\x00\x00")
    p, canvas = attach(fb)
    step(p, canvas, T0)
    fb.copy(0, 16, 0, 0, 640, 432)
    fb.fill(0, 432, 640, 16, b"\xff\xff\xff\x00")
    msgs = step(p, canvas, T0 + 1)
    drawn = [m for m in msgs if isinstance(m, w.Tile | w.Fill)]
    assert all(m.y >= 384 for m in drawn)  # the last tile row only
    assert_canvas_exact(p, canvas)


def test_watermark_change_at_the_minute_resends_stamped_tiles() -> None:
    fb = Framebuffer(320, 240)
    fb.fill(0, 0, 320, 240, b"\xe0\xe0\xe0\x00")
    wm = small_watermark()
    p, canvas = attach(fb, wm)
    step(p, canvas, T0)
    assert p.produce_frame(T0 + 5) is None
    assert p.next_timer(T0) == pytest.approx(T0 + 40, abs=1e-6)
    msgs = step(p, canvas, T0 + 41)
    assert any(isinstance(m, w.Tile) for m in msgs)
    assert_canvas_exact(p, canvas)


def test_a_timer_that_fires_just_before_the_minute_is_followed_by_one_at_the_minute() -> None:
    """uvloop rounds its timers to the millisecond: the wake-up for the minute may come a
    little early, and the shell's clock passes the minute before it asks for the next timer.
    That one is the minute (now past: at once), not the minute after, and the new minute's
    stamps go out; while the window is shut there is no timer at all (an Ack wakes the sender),
    so none spins."""
    fb = Framebuffer(320, 240)
    fb.fill(0, 0, 320, 240, b"\xe0\xe0\xe0\x00")
    p, canvas = attach(fb, small_watermark())
    step(p, canvas, T0)
    minute = p.next_timer(T0)
    assert minute == pytest.approx(T0 + 40, abs=1e-6)
    assert p.produce_frame(minute - 0.0001) is None  # early: the minute has not turned
    assert p.next_timer(minute + 0.0001) == pytest.approx(minute, abs=1e-6)
    msgs = step(p, canvas, minute + 0.0002)
    assert any(isinstance(m, w.Tile) for m in msgs)
    assert_canvas_exact(p, canvas)
    assert p.next_timer(minute + 0.0003) == pytest.approx(minute + 60, abs=1e-6)
    p.attached = False  # the window shut
    assert p.next_timer(minute + 61) is None


def test_frames_are_paced_by_acks_and_damage_accumulates() -> None:
    fb = Framebuffer(256, 256)
    p, canvas = attach(fb, max_unacked=2)
    for i in range(2):
        fb.fill(0, 0, 10 + i, 10, b"\x01\x02\x03\x00")
        canvas.apply_bytes(p.produce_frame(T0 + i) or b"")
    fb.fill(100, 100, 50, 50, b"\x09\x09\x09\x00")
    fb.fill(200, 200, 50, 50, b"\x08\x08\x08\x00")
    assert p.take_frame(T0 + 2) is None  # window full
    p.receive(w.Ack(1), T0 + 2)
    data = p.produce_frame(T0 + 2)
    assert data is not None
    canvas.apply_bytes(data)
    assert canvas.synced == [1, 2, 3]
    assert_canvas_exact(p, canvas)


def test_bytes_in_flight_limit_blocks_but_one_frame_always_goes() -> None:
    fb = Framebuffer(256, 256)
    p, _ = attach(fb, max_unacked=5, max_bytes_in_flight=1)
    assert p.produce_frame(T0) is not None
    fb.fill(0, 0, 5, 5, b"\x01\x01\x01\x00")
    assert p.take_frame(T0) is None


def test_quality_drops_when_round_trip_grows() -> None:
    fb = Framebuffer(64, 64)
    p, _ = attach(fb, settings=EncodeSettings(jpeg_quality=80))
    t = T0
    for i in range(8):
        fb.fill(0, 0, 8, 8, bytes((i, 0, 0, 0)))
        job = p.take_frame(t)
        assert job is not None
        p.frame_sent(job, 1000, t)
        rtt = 0.02 if i < 2 else 0.6
        t += rtt
        p.receive(w.Ack(job.frame_id), t)
    assert p.settings.jpeg_quality < 80


def test_too_many_copies_degrade_to_damage_and_stay_exact() -> None:
    fb = Framebuffer(256, 192)
    rng = random.Random(7)
    random_ops(fb, rng, 10)
    p, canvas = attach(fb)
    step(p, canvas, T0)
    for i in range(MAX_PENDING_COPIES + 5):
        fb.copy(i % 50, 0, 60, 10 + i % 40, 40, 40)
    msgs = step(p, canvas, T0 + 1)
    assert sum(isinstance(m, w.Copy) for m in msgs) <= MAX_PENDING_COPIES
    assert_canvas_exact(p, canvas)


def test_resize_sends_resize_and_a_full_frame() -> None:
    fb = Framebuffer(128, 128)
    p, canvas = attach(fb)
    step(p, canvas, T0)
    fb.resize(200, 100)
    fb.fill(0, 0, 200, 100, b"\x00\x80\xff\x00")
    msgs = step(p, canvas, T0 + 1)
    assert msgs[0] == w.Resize(200, 100)
    assert_canvas_exact(p, canvas)


def test_observer_key_frame_joins_at_the_same_instant() -> None:
    fb = Framebuffer(256, 192)
    rng = random.Random(3)
    random_ops(fb, rng, 10)
    p, live = attach(fb, small_watermark())
    step(p, live, T0)
    random_ops(fb, rng, 10)
    p.request_observer_key_frame()
    job = p.take_frame(T0 + 1)
    assert job is not None and job.observer_key is not None
    live.apply_bytes(encode_frame(job))
    watcher = CanvasModel()
    watcher.apply_bytes(encode_frame(job.observer_key))
    assert diff_pixels(watcher.image, live.image) == 0


def test_photo_tiles_go_jpeg_few_colour_text_palette_solid_fill() -> None:
    fb = Framebuffer(192, 64)
    rng = random.Random(0)
    fb.blit(0, 0, 64, 64, bytes(rng.randrange(256) for _ in range(64 * 64 * 4)))
    fb.fill(64, 0, 64, 64, b"\xff\xff\xff\x00")
    fb.fill(70, 10, 30, 3, b"\x00\x00\x00\x00")
    fb.fill(128, 0, 64, 64, b"\x00\x00\xff\x00")
    p, canvas = attach(fb, settings=EncodeSettings())
    msgs = step(p, canvas, T0)
    kinds = {(m.x, type(m).__name__, getattr(m, "format", None)) for m in msgs[1:-1]}
    assert kinds == {(0, "Tile", w.TileFormat.JPEG), (64, "Tile", w.TileFormat.PALETTE_PACKED),
                     (128, "Fill", None)}  # fmt: skip
    assert w.Fill(128, 0, 64, 64, 255, 0, 0) in msgs


def test_adjacent_text_tiles_merge_into_one_image() -> None:
    fb = Framebuffer(256, 128)
    fb.fill(0, 0, 256, 128, b"\xff\xff\xff\x00")
    for y in range(0, 128, 8):
        fb.fill(3, y, 250, 2, b"\x00\x00\x00\x00")
    p, canvas = attach(fb)
    msgs = step(p, canvas, T0)
    tiles = [m for m in msgs if isinstance(m, w.Tile)]
    assert len(tiles) == 1 and (tiles[0].w, tiles[0].h) == (256, 128)
    assert_canvas_exact(p, canvas)


def test_cursor_is_sent_as_rgba_png() -> None:
    fb = Framebuffer(64, 64)
    p, canvas = attach(fb)
    fb.set_cursor(1, 2, 8, 8, b"\x00\x00\xff\x00" * 64, b"\xf0" * 8)
    step(p, canvas, T0)
    assert canvas.cursor is not None and (canvas.cursor.hot_x, canvas.cursor.w) == (1, 8)
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(canvas.cursor.png))
    assert img.mode == "RGBA" and img.getpixel((0, 0)) == (255, 0, 0, 255)
    assert img.getpixel((7, 0))[3] == 0


def test_viewer_messages_become_actions() -> None:
    fb = Framebuffer(100, 50)
    p, _ = attach(fb)
    assert p.receive(w.Key(0xFF2A, True), T0) == [KeyInput(0xFF2A, True)]
    assert p.receive(w.Pointer(500, 20, 0x1FF), T0) == [PointerInput(99, 20, 0xFF)]
    assert p.receive(w.Ping(77), T0) == [Reply(w.encode(w.Pong(77)))]
    assert p.last_input == T0


def test_view_only_drops_input() -> None:
    fb = Framebuffer(100, 50)
    p, _ = attach(fb, session=SessionInfo(flags=w.HelloFlags.VIEW_ONLY))
    assert p.receive(w.Key(0x61, True), T0) == []
    assert p.receive(w.Pointer(1, 1, 1), T0) == []


def test_ack_for_a_frame_never_sent_is_an_error() -> None:
    p, _ = attach(Framebuffer(64, 64))
    with pytest.raises(ViewerMisbehaved):
        p.receive(w.Ack(5), T0)


def test_unsupported_version_ends_with_its_code() -> None:
    p = DisplayPipeline(Framebuffer(64, 64))
    with pytest.raises(UnsupportedVersion) as err:
        p.receive_data(w.encode(w.Resume(99)), T0)
    assert err.value.code == w.EndCode.UNSUPPORTED_VERSION


def test_garbage_from_the_viewer_is_a_protocol_error() -> None:
    p = DisplayPipeline(Framebuffer(64, 64))
    with pytest.raises(w.ProtocolError):
        p.receive_data(w.encode(w.Pong(1)), T0)


def test_a_small_change_is_sent_as_its_exact_box_not_a_whole_tile() -> None:
    fb = Framebuffer(256, 128)
    fb.fill(0, 0, 256, 128, b"\xff\xff\xff\x00")
    p, canvas = attach(fb)
    step(p, canvas, T0)
    glyph = bytes(0 if (x + y) % 3 else 255 for y in range(18) for x in range(16))
    fb.blit(58, 20, 16, 18, b"".join(bytes((v, v, v, 0)) for v in glyph))  # spans two tiles
    msgs = step(p, canvas, T0 + 1)
    drawn = [m for m in msgs if isinstance(m, w.Tile | w.Fill)]
    assert [(m.x, m.y, m.w, m.h) for m in drawn] == [(58, 20, 16, 18)]
    assert_canvas_exact(p, canvas)


def test_a_copy_moves_exact_damage_boxes_with_it() -> None:
    fb = Framebuffer(256, 128)
    fb.fill(0, 0, 256, 128, b"\xff\xff\xff\x00")
    p, canvas = attach(fb)
    step(p, canvas, T0)
    fb.fill(10, 10, 5, 5, b"\x00\x00\x00\x00")  # damaged, not yet sent
    fb.copy(0, 0, 150, 40, 64, 64)  # the viewer's copy carries the old white pixels
    msgs = step(p, canvas, T0 + 1)
    drawn = [m for m in msgs if isinstance(m, w.Tile | w.Fill)]
    assert {(m.x, m.y, m.w, m.h) for m in drawn} == {(10, 10, 5, 5), (160, 50, 5, 5)}
    assert_canvas_exact(p, canvas)


@pytest.mark.parametrize("wm", [None, "watermark"])
def test_a_run_of_tiles_is_cut_where_its_box_would_be_mostly_unchanged(wm: str | None) -> None:
    """Issue 11 part H: a dragged window's edge (a tall box) beside a thin line in the next tile
    used to go out as one box over both tiles' full height, mostly pixels that had not changed."""
    fb = Framebuffer(256, 128)
    fb.fill(0, 0, 256, 128, b"\xff\xff\xff\x00")
    p, canvas = attach(fb, small_watermark() if wm else None)
    step(p, canvas, T0)
    edge = bytes(0 if (x + y) % 3 else 200 for y in range(60) for x in range(24))
    fb.blit(40, 2, 24, 60, b"".join(bytes((v, v, v, 0)) for v in edge))  # ends at the tile edge
    line = bytes(0 if x % 5 else 90 for y in range(3) for x in range(56))
    fb.blit(64, 2, 56, 3, b"".join(bytes((v, v, v, 0)) for v in line))  # starts at it
    msgs = step(p, canvas, T0 + 1)
    drawn = {(m.x, m.y, m.w, m.h) for m in msgs if isinstance(m, w.Tile | w.Fill)}
    if wm is None:
        assert drawn == {(40, 2, 24, 60), (64, 2, 56, 3)}
    assert sum(m.w * m.h for m in msgs if isinstance(m, w.Tile | w.Fill)) < 80 * 60
    assert_canvas_exact(p, canvas)


def test_a_run_of_boxes_of_one_height_stays_one_image() -> None:
    fb = Framebuffer(256, 128)
    fb.fill(0, 0, 256, 128, b"\xff\xff\xff\x00")
    p, canvas = attach(fb)
    step(p, canvas, T0)
    row = bytes(0 if (x * 7 + y) % 4 else 255 for y in range(12) for x in range(200))
    fb.blit(30, 20, 200, 12, b"".join(bytes((v, v, v, 0)) for v in row))  # a redrawn line
    msgs = step(p, canvas, T0 + 1)
    assert [(m.x, m.y, m.w, m.h) for m in msgs if isinstance(m, w.Tile)] == [(30, 20, 200, 12)]
    assert_canvas_exact(p, canvas)


def test_frames_are_paced_but_a_typed_glyph_goes_at_once() -> None:
    """A desktop that redraws flat out gets at most 1 / min_frame_gap frames a second; its
    changes pile up meanwhile and the held-back frame carries them all. A glyph-sized change
    right after the viewer's own input is never held back; one the desktop makes by itself (a
    pointer a program moves, drawn into the framebuffer) is paced like the rest. A pipeline
    without a gap takes every frame."""
    gap = frame_gap(30)
    fb = Framebuffer(640, 200)
    fb.fill(0, 0, 640, 200, b"\x10\x20\x30\x00")
    p, canvas = attach(fb, small_watermark(), min_frame_gap=gap)
    step(p, canvas, T0)  # the key frame
    fb.fill(0, 0, 640, 100, b"\xff\x00\x00\x00")  # a big change right after it
    assert p.take_frame(T0 + gap / 3) is None
    # The first half of the gap holds the desktop's updates; the timer then wakes the shell
    # to ask again, and at the gap's end to take the frame.
    assert p.holding(T0 + gap / 3) and not p.holding(T0 + gap / 2)
    assert p.next_timer(T0 + gap / 3, asking=True) == pytest.approx(T0 + gap / 2, abs=1e-6)
    fb.fill(0, 100, 640, 100, b"\x00\xff\x00\x00")  # more piles up
    assert p.take_frame(T0 + gap * 0.75) is None
    assert p.next_timer(T0 + gap * 0.75) == pytest.approx(T0 + gap, abs=1e-6)
    # A big change waiting in the gap's second half: the shell reads no more updates until
    # its frame; one that came in the first half does not stop the ask at its middle.
    assert p.waits_for_gap(T0 + gap * 0.75) and not p.waits_for_gap(T0 + gap / 3)
    assert not p.waits_for_gap(T0 + gap)
    step(p, canvas, T0 + gap)  # one frame with both
    assert_canvas_exact(p, canvas)
    assert p.holding(T0 + gap * 1.25) and not p.holding(T0 + gap * 1.5)
    assert p.next_timer(T0 + gap * 1.25, asking=True) == pytest.approx(T0 + gap * 1.5, abs=1e-6)
    # Nothing waits once the desktop has been asked again: the next wake-up is the watermark's
    # minute, not the pacing.
    assert p.next_timer(T0 + gap * 1.75) == pytest.approx(T0 + 40, abs=1e-6)
    # A request still owed after the holding's end is due at once, whatever the clock says.
    assert p.next_timer(T0 + gap * 1.75, asking=True) == pytest.approx(T0 + gap * 1.5, abs=1e-6)
    # A pointer the desktop moves by itself, 5 ms later: glyph-sized, but no echo of the viewer.
    fb.fill(200, 20, 12, 18, b"\x01\x01\x01\x00")
    assert not p.small_update(64 * 64, T0 + gap + 0.005)
    assert p.take_frame(T0 + gap + 0.005) is None
    assert p.next_timer(T0 + gap + 0.005) == pytest.approx(T0 + 2 * gap, abs=1e-6)
    # The viewer types: the glyph goes at once, and carries the pointer's box with it.
    p.receive(w.Key(0x61, True), T0 + gap + 0.006)
    fb.fill(300, 50, 9, 16, b"\xee\xee\xee\x00")
    assert p.small_update(64 * 64, T0 + gap + 0.010)
    msgs = step(p, canvas, T0 + gap + 0.010)
    assert [m for m in msgs if isinstance(m, w.Tile)] != []
    assert_canvas_exact(p, canvas)
    # Half a second on, a small change is no longer the key's echo.
    fb.fill(300, 50, 9, 16, b"\x00\xee\xee\x00")
    assert p.take_frame(T0 + 3 * gap + 0.6) is not None  # the gap has passed: it goes
    fb.fill(300, 50, 9, 16, b"\xee\x00\xee\x00")
    assert p.take_frame(T0 + 3 * gap + 0.61) is None  # within the gap: it waits
    # Policy display.max_frame_rate: 0 is no pacing, the default.
    assert (frame_gap(0), gap) == (0.0, 1 / 30)
    fast, fast_canvas = attach(Framebuffer(640, 200), small_watermark(), min_frame_gap=frame_gap(0))
    step(fast, fast_canvas, T0)
    fast.fb.fill(0, 0, 640, 100, b"\xff\x00\x00\x00")
    assert fast.take_frame(T0 + 0.001) is not None
