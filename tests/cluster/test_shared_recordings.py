"""Nodes on copies of one DATA_DIR share one recordings location ("recordings_dir"): both see
every recording, and their retention sweeps never delete (or audit) one recording twice."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.app import apply_retention, open_context
from gateway.audit.query import iter_records
from gateway.recording.store import list_recordings, recordings_root
from gateway.recording.writer import RecordingWriter
from tests.fixtures.gateway import STAFFROOM


def two_nodes(tmp_path: Path) -> tuple[Path, Path, Path]:
    a = tmp_path / "node-a"
    subprocess.run([STAFFROOM, "init", str(a), "--hostname", "127.0.0.1", "--json"],
                   check=True, capture_output=True)
    shared = tmp_path / "shared-recordings"
    config = json.loads((a / "gateway.json").read_text())
    config.update(recordings_dir=str(shared), database=f"sqlite:///{tmp_path / 'state.db'}")
    (a / "gateway.json").write_text(json.dumps(config))
    (a / "policies" / "20-kita.toml").write_text(
        '[match]\nschools = ["kita-es"]\n\n[recording]\nretention_days = 30\n')
    b = tmp_path / "node-b"
    shutil.copytree(a, b, symlinks=True)
    return a, b, shared


def record(data: Path, root: Path, user: str, started: datetime) -> Path:
    from gateway.recording.keys import load_or_create_recording_key

    t = started.timestamp()
    writer = RecordingWriter.create(root, session_id=f"s-{user}", user=user, school="kita-es",
                                    width=64, height=64,
                                    signing_key=load_or_create_recording_key(data),
                                    clock=lambda: t)
    writer.close(t + 60)
    return writer.path


def test_two_nodes_sweep_one_location_and_delete_each_recording_once(tmp_path: Path) -> None:
    a, b, shared = two_nodes(tmp_path)
    now = datetime.now(UTC)
    old = [record(b, shared, f"t.old{i}", now - timedelta(days=40, minutes=i)) for i in range(12)]
    recent = record(a, shared, "t.new", now - timedelta(days=2))
    contexts = [open_context(a, node="a"), open_context(b, node="b")]
    assert recordings_root(a, contexts[0].config.recordings_dir) == shared
    assert [i.path for i in list_recordings(shared)] == [*reversed(old), recent]
    deleted: dict[str, list[str]] = {}
    start = threading.Barrier(2)

    def sweep(context: object) -> None:
        start.wait()
        deleted[context.node] = apply_retention(context)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=sweep, args=(c,)) for c in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for c in contexts:
        c.audit.close()
        c.store.close()
    assert sorted(deleted["a"] + deleted["b"]) == sorted(p.stem for p in old)
    assert [i.path for i in list_recordings(shared)] == [recent]
    assert sorted(p.name for p in shared.rglob("*") if p.is_file()) == sorted(
        [recent.name, recent.name + ".idx"])  # no claimed leftovers
    audited = [r.event.subject for node in (a, b)
               for r in iter_records(node / "audit", kind="recording.delete")]
    assert sorted(audited) == sorted(f"t.old{i}" for i in range(12))  # each once, in all
