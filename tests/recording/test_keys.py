"""Recordings have their own signing key, apart from the audit key; a DATA_DIR made before
that gets the key at the gateway's next start and keeps verifying its older recordings."""

from __future__ import annotations

import shutil
import stat
import subprocess
import time
from pathlib import Path

from gateway.app import open_context
from gateway.audit.keys import load_signing_key, public_key_pem
from gateway.recording.store import recordings_root
from gateway.recording.writer import RecordingWriter
from tests.fixtures.gateway import STAFFROOM


def record(data: Path, key: object, session: str) -> Path:
    t = time.time()
    writer = RecordingWriter.create(recordings_root(data), session_id=session, user="t.k",
                                    school="kita-es", width=64, height=64,
                                    signing_key=key, clock=lambda: t)  # type: ignore[arg-type]
    writer.close(t + 1)
    return writer.path


def verify(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STAFFROOM, "recordings", "verify", str(path), *extra],
                          capture_output=True, text=True, timeout=60)


def test_an_old_data_dir_gets_a_recordings_key_and_old_recordings_still_verify(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    subprocess.run([STAFFROOM, "init", str(data), "--hostname", "127.0.0.1", "--json"],
                   check=True, capture_output=True, timeout=60)
    assert (data / "keys" / "recordings.key").exists()  # a new DATA_DIR has it from init
    shutil.rmtree(data / "keys")  # as made by a gateway before the recordings key
    audit_key = load_signing_key(data / "audit-signing.key")
    old = record(data, audit_key, "s-old")  # what such a gateway wrote

    context = open_context(data)  # the gateway's start
    try:
        new_key = context.extras["recording_key"]
    finally:
        context.audit.close()
        context.store.close()
    keys = data / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE((keys / "recordings.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((keys / "recordings.pub").stat().st_mode) == 0o644
    assert (keys / "recordings.pub").read_bytes() == public_key_pem(new_key)
    assert public_key_pem(new_key) != public_key_pem(audit_key)
    new = record(data, new_key, "s-new")

    for path in (old, new):  # the DATA_DIR is found from the file's place; each key by its id
        ok = verify(path)
        assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout
    wrong = verify(new, "--key", str(data / "audit-signing.pub"))
    assert wrong.returncode == 3 and "different key" in wrong.stdout, wrong.stdout
    wrong = verify(old, "--key", str(keys / "recordings.pub"))
    assert wrong.returncode == 3 and "different key" in wrong.stdout, wrong.stdout
    again = open_context(data)  # a second start keeps the key it made
    try:
        assert public_key_pem(again.extras["recording_key"]) == public_key_pem(new_key)
    finally:
        again.audit.close()
        again.store.close()
