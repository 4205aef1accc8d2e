"""Recordings are kept for the policy's `[recording] retention_days`, then deleted — and each
deletion is in the audit log before the file goes."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.app import apply_retention, open_context
from gateway.audit.keys import load_signing_key
from gateway.audit.query import iter_records
from gateway.recording.store import list_recordings, recordings_root
from gateway.recording.writer import RecordingWriter
from tests.fixtures.gateway import STAFFROOM


def record(data: Path, user: str, started: datetime) -> Path:
    t = started.timestamp()
    writer = RecordingWriter.create(recordings_root(data), session_id=f"s-{user}", user=user,
                                    school="kita-es", width=64, height=64,
                                    signing_key=load_signing_key(data / "audit-signing.key"),
                                    clock=lambda: t)
    writer.close(t + 60)
    return writer.path


def test_recordings_past_retention_are_deleted_and_audited(tmp_path: Path) -> None:
    data = tmp_path / "data"
    subprocess.run([STAFFROOM, "init", str(data), "--hostname", "127.0.0.1", "--json"],
                   check=True, capture_output=True)
    (data / "policies" / "20-kita.toml").write_text(
        '[match]\nschools = ["kita-es"]\n\n[recording]\nretention_days = 30\n')
    now = datetime.now(UTC)
    old = record(data, "t.old", now - timedelta(days=31))
    recent = record(data, "t.new", now - timedelta(days=29))
    context = open_context(data)
    try:
        deleted = apply_retention(context)
    finally:
        context.audit.close()
        context.store.close()
    assert [i.path for i in list_recordings(recordings_root(data))] == [recent]
    assert not old.exists() and len(deleted) == 1
    records = [r for r in iter_records(data / "audit", kind="recording.delete")]
    assert [(r.event.subject, r.event.details["reason"]) for r in records] == [
        ("t.old", "retention")]
