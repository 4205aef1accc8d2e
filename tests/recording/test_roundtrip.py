"""Round trip through a real display stream: bytes as sent, seeking reproduces the screen."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.recording import format as fmt
from gateway.recording.index import SeekPoint, index_path, read_index, write_index
from gateway.recording.reader import RecordingReader
from gateway.recording.verify import verify_recording
from gateway.wire import display as w
from tests.fixtures.recording import T0, Recorded, identical, record_session, replay


def frames_of(path: Path) -> bytes:
    with RecordingReader.open(path) as r:
        return b"".join(c.payload for c in r.chunks() if c.type is fmt.ChunkType.FRAME)


def test_frames_are_stored_exactly_as_sent(sealed_recording: Recorded) -> None:
    assert frames_of(sealed_recording.path) == b"".join(d for _, d in sealed_recording.sent)
    with RecordingReader.open(sealed_recording.path) as r:
        h = r.header
        assert (h.session_id, h.user, h.school, h.width, h.height) == (
            "sess-1", "t-0042", "東小学校", 320, 240)  # fmt: skip
        assert h.started_ms == T0 * 1000
        assert h.key_id == fmt.key_id(sealed_recording.key)
        types = [c.type for c in r.chunks()]
    assert types[-1] is fmt.ChunkType.SEAL and types.count(fmt.ChunkType.SEAL) == 1
    assert fmt.ChunkType.CHECKPOINT in types and fmt.ChunkType.KEYFRAME in types


@pytest.mark.parametrize("watermark", [False, True])
def test_seek_lands_on_the_last_key_frame_and_replays_the_screen(
    tmp_path: Path, recording_key: ec.EllipticCurvePrivateKey, watermark: bool
) -> None:
    rec = record_session(tmp_path, recording_key, seed=1, frames=40, key_frame_every=10.0,
                         size=(640, 400), watermark=watermark)  # fmt: skip
    points = rec.writer.seek_points
    assert [p.t_ms for p in points] == [0, 10500, 21000, 31500, 42000, 52500]
    with RecordingReader.open(rec.path) as r:
        for target in [0, 700, 1500, 10499, 10500, 20000, 33333, 45000, 58500, 90000]:
            seek = r.seek(target)
            assert seek.t_ms == max(p.t_ms for p in points if p.t_ms <= target)
            canvas = replay(seek, target)
            assert canvas.image is not None
            assert identical(canvas.image, rec.screen_at(target)), target


@pytest.mark.parametrize(("resume_at", "resize_at"), [(7, None), (None, 9)])
def test_seek_across_a_resume_and_a_resize(tmp_path: Path, recording_key, resume_at,
                                           resize_at) -> None:  # fmt: skip
    rec = record_session(tmp_path, recording_key, seed=2, frames=16, key_frame_every=60.0,
                         resume_at=resume_at, resize_at=resize_at)  # fmt: skip
    with RecordingReader.open(rec.path) as r:
        if resume_at is not None:  # the live frame after a Resume starts with Hello: a seek point
            assert r.seek(resume_at * 1500 + 10).t_ms == resume_at * 1500
        for target in range(0, 16 * 1500, 1100):
            canvas = replay(r.seek(target), target)
            assert canvas.image is not None
            assert identical(canvas.image, rec.screen_at(target)), target


def test_index_written_at_close_and_rebuilt_by_a_scan(sealed_recording: Recorded) -> None:
    path = sealed_recording.path
    with RecordingReader.open(path) as r:
        points = read_index(path, r.header_hash)
        assert points == sealed_recording.writer.seek_points == r.scan_seek_points()
    index_path(path).unlink()
    with RecordingReader.open(path) as r:
        assert r.seek_points() == points
        assert r.rebuild_index() == points
    assert index_path(path).exists()


def test_a_lying_index_is_ignored(sealed_recording: Recorded) -> None:
    path = sealed_recording.path
    with RecordingReader.open(path) as r:
        good = r.scan_seek_points()
        lies = [SeekPoint(0, good[0].offset + 1), SeekPoint(20_000, 2**64 - 1)]
        write_index(path, r.header_hash, lies)
        assert read_index(path, r.header_hash) == lies  # well formed, but pointing anywhere
    with RecordingReader.open(path) as r:
        seek = r.seek(20_000)
        assert seek.t_ms == max(p.t_ms for p in good if p.t_ms <= 20_000)
        assert identical(replay(seek, 20_000).image, sealed_recording.screen_at(20_000))


def test_a_frame_larger_than_a_chunk_continues_across_chunks(
    tmp_path: Path, recording_key: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fmt, "MAX_PAYLOAD", 700)  # the writer splits; the reader's bound stays
    rec = record_session(tmp_path, recording_key, seed=3, frames=12, key_frame_every=5.0)
    with RecordingReader.open(rec.path) as r:
        chunks = list(r.chunks())
        assert any(c.continued and c.type is fmt.ChunkType.KEYFRAME for c in chunks)
        assert max(len(c.payload) for c in chunks if c.type is fmt.ChunkType.FRAME) <= 700
        for target in (0, 5000, 9000, 16500):
            assert identical(replay(r.seek(target), target).image, rec.screen_at(target))
    assert frames_of(rec.path) == b"".join(d for _, d in rec.sent)
    assert verify_recording(rec.path, recording_key.public_key()).ok


def test_marks_round_trip(tmp_path: Path, recording_key: ec.EllipticCurvePrivateKey) -> None:
    rec = record_session(tmp_path, recording_key, frames=3, close=False)
    rec.writer.mark("notice", "Idle: the session ends in 60 seconds.", T0 + 4)
    rec.writer.mark("end", "終了 " + "x" * 2000, T0 + 5)  # cut to the mark limit
    rec.writer.close(T0 + 5)
    with RecordingReader.open(rec.path) as r:
        marks = r.marks()
    assert marks[0] == (4000, "notice", "Idle: the session ends in 60 seconds.")
    assert marks[1][:2] == (5000, "end") and len(marks[1][2].encode()) <= fmt.MAX_MARK_TEXT
    with pytest.raises(ValueError):
        fmt.encode_mark("", "x")


def test_files_are_private_and_laid_out_by_month(sealed_recording: Recorded) -> None:
    path = sealed_recording.path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(index_path(path)).st_mode) == 0o600
    for directory in (path.parent, path.parent.parent, path.parent.parent.parent):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
    assert path.parent.parts[-2:] == ("2023", "11") and path.name.startswith("20231114T221320Z-")


def test_an_unsealed_recording_still_plays_from_a_scan(tmp_path: Path, recording_key) -> None:
    rec = record_session(tmp_path, recording_key, seed=4, frames=20, close=False)
    rec.writer.handle_timer(T0 + 60)  # what the session's timer does: a checkpoint, fsynced
    size = rec.path.stat().st_size
    with rec.path.open("r+b") as f:  # a crash mid-write leaves half a chunk behind
        f.truncate(size - 5)
    assert not index_path(rec.path).exists()
    with RecordingReader.open(rec.path) as r:
        target = 15_000
        canvas = replay(r.seek(target), target)
        assert identical(canvas.image, rec.screen_at(target))
        with pytest.raises(fmt.FormatError):
            list(r.chunks())
    result = verify_recording(rec.path, recording_key.public_key())
    assert not result.ok and result.cut_short and "cut short" in result.message


def test_key_frame_decodes_as_a_whole_frame(sealed_recording: Recorded) -> None:
    with RecordingReader.open(sealed_recording.path) as r:
        msgs = w.decode_all(r.seek(25_000).key_frame, w.Direction.TO_VIEWER)
    assert isinstance(msgs[0], w.Hello) and isinstance(msgs[-1], w.Sync)
    assert msgs[0].session_id == "sess-1"
