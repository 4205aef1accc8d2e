"""Store: layout, listing from headers and seals only, retention, deletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.recording.index import index_path
from gateway.recording.store import (
    RecordingInfo,
    delete,
    expired,
    find_recording,
    list_recordings,
    new_recording_id,
    recording_path,
    recordings_root,
)
from tests.fixtures.recording import T0, record_session


def test_list_reads_headers_and_seals(tmp_path: Path, recording_key) -> None:
    root = recordings_root(tmp_path)
    sealed = record_session(root, recording_key, frames=4)
    running = record_session(root, recording_key, frames=4, close=False)
    running.writer.handle_timer(T0 + 60)  # its chunks so far are on disk, no seal yet
    (root / "2023" / "11" / "garbage.srec").write_bytes(b"not a recording at all")
    infos = list_recordings(root)
    assert [i.id for i in infos] == sorted([sealed.writer.header.recording_id,
                                            running.writer.header.recording_id])  # fmt: skip
    by_id = {i.id: i for i in infos}
    done = by_id[sealed.writer.header.recording_id]
    assert (done.session, done.user, done.school, done.sealed) == ("sess-1", "t-0042", "東小学校",
                                                                   True)  # fmt: skip
    assert done.started == datetime.fromtimestamp(T0, UTC)
    assert done.ended == done.started + timedelta(seconds=6)
    assert done.bytes == sealed.path.stat().st_size and done.path == sealed.path
    live = by_id[running.writer.header.recording_id]
    assert not live.sealed and live.ended is None
    running.writer.close(T0 + 61)
    assert all(i.sealed for i in list_recordings(root))


def test_a_truncated_seal_is_not_sealed(tmp_path: Path, recording_key) -> None:
    rec = record_session(tmp_path, recording_key, frames=3)
    with rec.path.open("r+b") as f:
        f.truncate(rec.path.stat().st_size - 1)
    (info,) = list_recordings(tmp_path)
    assert not info.sealed and info.ended is None


def test_paths_ids_and_find(tmp_path: Path) -> None:
    rid = new_recording_id(T0)
    assert rid.startswith("20231114T221320Z-") and len(rid) == 29
    path = recording_path(tmp_path, rid, T0)
    assert path == tmp_path / "2023" / "11" / f"{rid}.srec"
    assert find_recording(tmp_path, rid) is None
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert find_recording(tmp_path, rid) == path
    for bad in ("../../etc/passwd", "20231114T221320Z-zz", rid + "/x", ""):
        assert find_recording(tmp_path, bad) is None
        with pytest.raises(ValueError):
            recording_path(tmp_path, bad, T0)


def info(days_ago: float, *, ended: bool = True) -> RecordingInfo:
    now = datetime(2025, 4, 7, 8, 0, tzinfo=UTC)
    start = now - timedelta(days=days_ago, hours=2)
    return RecordingInfo(f"r{days_ago}", Path(f"/r/{days_ago}"), "s", "u", "x", start,
                         start + timedelta(hours=2) if ended else None, 1, ended)  # fmt: skip


def test_expired_is_pure_and_uses_the_end() -> None:
    now = datetime(2025, 4, 7, 8, 0, tzinfo=UTC)
    infos = [info(10), info(30.5), info(29.9), info(31, ended=False)]
    assert [i.id for i in expired(infos, now, keep_days=30)] == ["r30.5", "r31"]
    assert expired(infos, now, keep_days=365) == []


def test_delete_removes_the_recording_and_its_index(tmp_path: Path, recording_key) -> None:
    rec = record_session(tmp_path, recording_key, frames=3)
    assert index_path(rec.path).exists()
    delete(rec.path)
    assert not rec.path.exists() and not index_path(rec.path).exists()
    assert list_recordings(tmp_path) == []
