"""An hour-long recording seeks to any minute in well under a second; the size of an office
stream per hour, measured through the real pipeline at 1080p."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image, ImageDraw, ImageFont

from gateway.display.framebuffer import Framebuffer
from gateway.display.pipeline import DisplayPipeline, SessionInfo, encode_frame
from gateway.display.watermark import Watermark
from gateway.recording import format as fmt
from gateway.recording.index import index_path
from gateway.recording.reader import RecordingReader
from gateway.recording.verify import verify_recording
from gateway.recording.writer import RecordingWriter
from gateway.wire import display as w
from tests.fixtures.recording import T0

FPS, KEY_EVERY, HOUR = 4, 30, 3600


@pytest.fixture(scope="module")
def hour(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """One hour: 4 frames/s of ~2 KB (typing) and a 120 KB key frame every 30 s (~40 MB)."""
    key = ec.generate_private_key(ec.SECP256R1())
    rng = random.Random(5)
    block = rng.randbytes(4096)
    rec = RecordingWriter.create(
        tmp_path_factory.mktemp("hour"), session_id="s-hour", user="t-0042", school="東小学校",
        width=1920, height=1080, signing_key=key, clock=lambda: T0, key_frame_every=KEY_EVERY,
    )  # fmt: skip
    t = time.perf_counter()
    for i in range(HOUR * FPS):
        now = T0 + i / FPS
        data = b"\x03" + i.to_bytes(4, "big") + block[: rng.randint(500, 3500)]
        key_frame = None
        if rec.needs_key_frame(now):
            key_frame = b"\x02" + round(i / FPS * 1000).to_bytes(8, "big") + block * 30
        rec.write_frame(data, now, key_frame=key_frame)
    rec.close(T0 + HOUR)
    print(f"\nwrote one hour ({rec.bytes_written / 1e6:.1f} MB) in {time.perf_counter() - t:.2f} s")
    return rec.path, key


def frame_ids(chunks) -> list[int]:
    return [int.from_bytes(c.payload[1:5], "big") for c in chunks]


@pytest.mark.parametrize("use_index", [True, False])
def test_seek_to_any_minute_of_an_hour_is_fast(hour, use_index: bool) -> None:
    path, _ = hour
    if not use_index:
        index_path(path).unlink(missing_ok=True)  # the reader rebuilds it with a scan
    worst = 0.0
    for minute in range(61):
        target = minute * 60_000 + (45_000 if minute % 2 else 17_000)
        start = time.perf_counter()
        with RecordingReader.open(path) as r:
            seek = r.seek(target)
            frames = []
            for chunk in seek.frames:
                if chunk.t_ms > target:
                    break
                frames.append(chunk)
        worst = max(worst, time.perf_counter() - start)
        key_t = min(target, HOUR * 1000 - 250) // (KEY_EVERY * 1000) * KEY_EVERY * 1000
        assert seek.t_ms == key_t
        assert seek.key_frame[1:9] == key_t.to_bytes(8, "big")
        first = key_t * FPS // 1000 + 1  # the frame after the one the key frame mirrors
        assert frame_ids(frames) == list(range(first, first + len(frames)))
        assert frames[-1].t_ms <= target < frames[-1].t_ms + 1000 // FPS or target > HOUR * 1000
    print(f"\nworst seek {'with' if use_index else 'without'} index: {worst * 1000:.1f} ms")
    assert worst < 1.0


def test_the_hour_verifies(hour) -> None:
    path, key = hour
    start = time.perf_counter()
    result = verify_recording(path, key.public_key())
    print(f"\nverified {result.chunks} chunks in {time.perf_counter() - start:.2f} s")
    assert result.ok and result.duration == HOUR


def office_desktop() -> tuple[Framebuffer, ImageFont.FreeTypeFont]:
    font = ImageFont.truetype("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 14)
    img = Image.new("RGB", (1920, 1080), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 1920, 28), fill=(230, 230, 235))
    text = "The quick brown fox jumps over the lazy dog. 学校の職員室から自宅へ。 " * 3
    for y in range(40, 700, 20):
        d.text((10, y), text[: 60 + (y * 7) % 90], font=font, fill=(20, 20, 20))
    fb = Framebuffer(1920, 1080)
    fb.blit(0, 0, 1920, 1080, img.convert("RGBX").tobytes("raw", "BGRX"))
    return fb, font


def test_office_typing_size_per_hour(tmp_path: Path, recording_key) -> None:
    """60 s of typing at 8 characters/s in 5 frames/s, with the watermark (it changes at the
    minute) and a key frame each 30 s, through the real pipeline and encoder; scaled to 1 h."""
    fb, font = office_desktop()
    wm = Watermark(fields={"user_id": "t-0042", "name": "山田 花子", "school": "東小学校"})
    p = DisplayPipeline(fb, watermark=wm, session=SessionInfo("s-1", "東小学校"))
    p.receive(w.Resume(w.VERSION, 0), T0)
    rec = RecordingWriter.create(tmp_path, session_id="s-1", user="t-0042", school="東小学校",
                                 width=1920, height=1080, signing_key=recording_key,
                                 clock=lambda: T0)  # fmt: skip
    typed, x, y, keys = "Dear parents, the school trip is on Friday. 金曜日は遠足です。", 10, 720, 0
    frame_bytes = key_bytes = first = 0
    for i in range(60 * 5):
        now = T0 + i / 5
        for ch in typed[keys % len(typed)] + typed[(keys + 1) % len(typed)]:  # 2 chars per frame
            glyph = Image.new("RGB", (16, 20), (255, 255, 255))
            ImageDraw.Draw(glyph).text((0, 0), ch, font=font, fill=(20, 20, 20))
            fb.blit(x, y, 16, 20, glyph.convert("RGBX").tobytes("raw", "BGRX"))
            x, keys = x + 12, keys + 1
            if x > 1800:
                x, y = 10, y + 20 if y < 1040 else 720
        if rec.needs_key_frame(now):
            p.request_observer_key_frame()
        job = p.take_frame(now)
        assert job is not None
        data = encode_frame(job)
        key = encode_frame(job.observer_key) if job.observer_key else None
        p.frame_sent(job, len(data), now)
        p.receive(w.Ack(job.frame_id), now)
        rec.write_frame(data, now, key_frame=key)
        first = first or len(data)
        frame_bytes += len(data)
        key_bytes += len(key) if key and data[:1] != b"\x01" else 0  # a Hello frame is whole
    rec.close(T0 + 60)
    size = rec.path.stat().st_size
    typing = frame_bytes - first  # live frames after the first whole one, for one minute
    hourly = 60 * (typing + 2 * key_bytes)  # steady state: two key frames a minute
    print(f"\noffice typing 1080p, 1 min: file {size / 1e3:.0f} KB; typing frames "
          f"{typing / 1e3:.0f} KB ({typing / 299:.0f} B/frame), a key frame "
          f"{key_bytes / 1e3:.0f} KB, first frame {first / 1e3:.0f} KB -> per hour "
          f"~{hourly / 1e6:.0f} MB ({60 * typing / 1e6:.1f} MB frames + "
          f"{120 * key_bytes / 1e6:.1f} MB key frames)")  # fmt: skip
    assert verify_recording(rec.path, recording_key.public_key()).ok
    with RecordingReader.open(rec.path) as r:
        assert [c.t_ms for c in r.chunks() if c.type is fmt.ChunkType.KEYFRAME] == [30_000]
    assert size * 60 < 2_000_000_000  # sanity: an office hour stays well below 2 GB
