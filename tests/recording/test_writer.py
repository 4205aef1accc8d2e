"""RecordingWriter: disk full, flush/fsync at checkpoints, cost on the frame path, async wrapper."""

from __future__ import annotations

import asyncio
import errno
import os
import statistics
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.recording import format as fmt
from gateway.recording.reader import RecordingReader
from gateway.recording.verify import verify_recording
from gateway.recording.writer import AsyncRecordingWriter, RecordingFailed, RecordingWriter
from tests.fixtures.recording import T0


def new_writer(root: Path, key: ec.EllipticCurvePrivateKey, **kw) -> RecordingWriter:
    return RecordingWriter.create(root, session_id="s-1", user="t-0042", school="東小学校",
                                  width=1920, height=1080, signing_key=key, clock=lambda: T0,
                                  **kw)  # fmt: skip


def frame(i: int, size: int = 3000) -> bytes:
    return b"\x03" + i.to_bytes(4, "big") * (size // 4)  # not a Hello: a plain frame


def disk_full(*_args: object) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_at_a_checkpoint_raises_recording_failed(tmp_path: Path, recording_key,
                                                           monkeypatch) -> None:  # fmt: skip
    rec = new_writer(tmp_path, recording_key, checkpoint_every=8)
    for i in range(6):
        rec.write_frame(frame(i), T0 + i * 0.2)  # buffered: no write yet
    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(RecordingFailed) as err:
        for i in range(6, 10):
            rec.write_frame(frame(i), T0 + i * 0.2)
    assert str(err.value) == "The session recording stopped because the recording disk is full."
    assert rec.failed
    with pytest.raises(RecordingFailed):
        rec.write_frame(frame(11), T0 + 3)  # stays failed: the session ends with the message
    rec.close(T0 + 3)  # no exception, file descriptor released
    monkeypatch.undo()
    result = verify_recording(rec.path, recording_key.public_key())
    assert not result.ok and result.cut_short and "cut short" in result.message


def test_fsync_failure_and_create_failure_raise_recording_failed(tmp_path: Path, recording_key,
                                                                 monkeypatch) -> None:  # fmt: skip
    rec = new_writer(tmp_path, recording_key)
    rec.write_frame(frame(1), T0)
    monkeypatch.setattr(os, "fsync", lambda fd: disk_full())
    with pytest.raises(RecordingFailed, match="disk is full"):
        rec.close(T0 + 1)
    monkeypatch.undo()
    (tmp_path / "ro").mkdir(mode=0o500)
    monkeypatch.setattr(os, "open", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EIO, "")))
    with pytest.raises(RecordingFailed, match="could not be saved"):
        new_writer(tmp_path / "ro", recording_key)


def test_chunks_reach_the_disk_at_each_checkpoint(tmp_path: Path, recording_key,
                                                  monkeypatch) -> None:  # fmt: skip
    synced = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".srec"):  # not directory entries
            synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    rec = new_writer(tmp_path, recording_key, checkpoint_every=10, checkpoint_seconds=5.0)
    header_only = rec.path.stat().st_size
    for i in range(8):
        rec.write_frame(frame(i), T0 + i * 0.1)
    assert rec.path.stat().st_size == header_only and not synced  # buffered
    rec.write_frame(frame(8), T0 + 0.9)
    rec.write_frame(frame(9), T0 + 1.0)
    assert rec.path.stat().st_size == rec.bytes_written and len(synced) == 1
    rec.write_frame(frame(10), T0 + 2.0)
    assert rec.next_timer() == pytest.approx(T0 + 6.0, abs=1e-6)
    rec.handle_timer(T0 + 5.0)
    assert len(synced) == 1
    rec.handle_timer(T0 + 6.0)  # a quiet screen still gets its chunks signed and synced
    assert len(synced) == 2 and rec.next_timer() is None
    rec.handle_timer(T0 + 60.0)  # nothing new: no empty checkpoints
    assert len(synced) == 2
    rec.close(T0 + 61)
    assert verify_recording(rec.path, recording_key.public_key()).ok


def test_needs_key_frame_every_interval_and_after_a_hello_frame(tmp_path: Path,
                                                                recording_key) -> None:  # fmt: skip
    rec = new_writer(tmp_path, recording_key, key_frame_every=30.0)
    assert rec.needs_key_frame(T0)
    rec.write_frame(b"\x01" + b"hello-led frame", T0)  # after a Resume: a whole frame
    rec.write_frame(frame(1), T0 + 1.0)
    assert not rec.needs_key_frame(T0 + 29.9)
    assert rec.needs_key_frame(T0 + 30.0)
    rec.write_frame(frame(1), T0 + 30.0, key_frame=b"\x01key")
    assert not rec.needs_key_frame(T0 + 31)
    assert [p.t_ms for p in rec.seek_points] == [0, 30_000]
    rec.close(T0 + 40)


def test_a_screen_unchanged_since_the_last_key_frame_needs_no_other(
        tmp_path: Path, recording_key) -> None:  # fmt: skip
    rec = new_writer(tmp_path, recording_key, key_frame_every=30.0)
    rec.write_frame(frame(1), T0, key_frame=b"\x01key")  # the first frame's key frame
    assert not rec.needs_key_frame(T0 + 300.0)  # a quiet screen: the seek point still shows it
    rec.mark("notice", "posture rechecked", T0 + 301.0)  # a mark changes no pixel
    assert not rec.needs_key_frame(T0 + 302.0)
    rec.write_frame(frame(2), T0 + 303.0)  # the quiet ends: the next frame brings a key frame
    assert rec.needs_key_frame(T0 + 303.5)
    rec.write_frame(frame(3), T0 + 303.5, key_frame=b"\x01key")
    assert [p.t_ms for p in rec.seek_points] == [0, 303_500]
    rec.close(T0 + 310)
    assert verify_recording(rec.path, recording_key.public_key()).ok


def test_a_wall_clock_stepping_back_never_reorders_chunks(tmp_path: Path, recording_key) -> None:
    rec = new_writer(tmp_path, recording_key)
    for now in (T0 + 5, T0 + 3, T0 + 4, T0 + 10):
        rec.write_frame(frame(1), now)
    rec.close(T0 + 9)
    with RecordingReader.open(rec.path) as r:
        times = [c.t_ms for c in r.chunks()]
    assert times == sorted(times) and times[-1] == 10_000
    assert verify_recording(rec.path, recording_key.public_key()).ok


def test_writes_are_cheap_on_the_frame_path(tmp_path: Path, recording_key) -> None:
    """A 1080p typing session: ~3 KB frames at 5/s; checkpoints (sign + fsync) each 10 s."""
    rec = new_writer(tmp_path, recording_key)
    appends, flushes = [], []
    for i in range(1500):  # 5 minutes of typing
        now = T0 + i * 0.2
        due = rec.checkpoint_due(now, 3001)
        t = time.perf_counter()
        rec.write_frame(frame(i, 3000), now)
        (flushes if due else appends).append(time.perf_counter() - t)
    rec.close(T0 + 300)
    mean, p99 = statistics.mean(appends), sorted(appends)[int(len(appends) * 0.99)]
    print(f"\nappend: mean {mean * 1e6:.1f} µs, p99 {p99 * 1e6:.1f} µs over {len(appends)}; "
          f"checkpoint+fsync: mean {statistics.mean(flushes) * 1e3:.2f} ms, "
          f"max {max(flushes) * 1e3:.2f} ms over {len(flushes)}")  # fmt: skip
    assert len(flushes) == 29  # one each 10 s; the seal at close is not counted
    assert mean < 200e-6  # generous for this 2-core machine; measured ~10-20 µs


async def test_async_wrapper_keeps_order_and_flushes_off_the_loop(tmp_path: Path, recording_key,
                                                                  monkeypatch) -> None:  # fmt: skip
    threads = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".srec"):
            threads.append(threading.get_ident())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    rec = AsyncRecordingWriter(new_writer(tmp_path, recording_key, checkpoint_every=4))
    loop_thread = threading.get_ident()
    await asyncio.gather(*(rec.write_frame(frame(i), T0 + i * 0.1) for i in range(10)))
    await rec.mark("end", "normal", T0 + 2)
    await rec.handle_timer(T0 + 30)
    await rec.close(T0 + 30)
    assert threads and loop_thread not in threads
    with RecordingReader.open(rec.writer.path) as r:
        ids = [int.from_bytes(c.payload[1:5], "big") for c in r.chunks()
               if c.type is fmt.ChunkType.FRAME]  # fmt: skip
    assert ids == list(range(10))
    assert verify_recording(rec.writer.path, recording_key.public_key()).ok


def test_header_fields_are_bounded(tmp_path: Path, recording_key) -> None:
    with pytest.raises(ValueError):
        RecordingWriter.create(tmp_path, session_id="s", user="u" * 200, school="x", width=1,
                               height=1, signing_key=recording_key, clock=lambda: T0)  # fmt: skip
    assert not list(tmp_path.rglob("*.srec"))


@pytest.mark.parametrize("length", [0xFFFFFFFF, fmt.MAX_PAYLOAD, fmt.MAX_PAYLOAD + 1])
def test_a_hostile_length_is_refused_before_allocating(tmp_path: Path, recording_key,
                                                       length: int) -> None:  # fmt: skip
    rec = new_writer(tmp_path, recording_key)
    rec.close(T0)
    raw = rec.path.read_bytes()
    with RecordingReader.open(rec.path) as r:
        start = r.data_start
    rec.path.write_bytes(raw[:start] + fmt.chunk_head(fmt.ChunkType.FRAME, length, 0) + b"x" * 64)
    tracemalloc.start()
    try:
        with RecordingReader.open(rec.path) as r, pytest.raises(fmt.FormatError):
            list(r.chunks())
        result = verify_recording(rec.path, recording_key.public_key())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A length that fits its type but runs past the end reads as a write cut short by a crash.
    assert not result.ok and "chunk 0" in result.message.lower()
    assert result.cut_short == (length == fmt.MAX_PAYLOAD)
    assert peak < 1024 * 1024
