"""Issue 10, fails closed and recovers by itself: DATA_DIR on a small tmpfs, filled to the last
byte while the gateway runs. Logins and admin actions are refused with one sentence, the
gateway stays up and /api/v1/health says what is wrong; free the space and everything works
again with no repair, and `staffroom audit verify` passes. Retention still deletes (and
records the deletion) on a full disk."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.app import apply_retention, open_context
from gateway.audit.query import iter_records
from gateway.recording.keys import load_or_create_recording_key
from gateway.recording.store import list_recordings, recordings_root
from gateway.recording.writer import RecordingWriter
from tests.faults.held import health
from tests.fixtures.agent import Agent, freshclam_conf
from tests.fixtures.gateway import STAFFROOM, Persona, World, build_world, stop_gateway

pytestmark = pytest.mark.slow

FULL = "disk is full"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An empty 48 MiB tmpfs at tmp_path/data (the DATA_DIR the fixtures create)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "data"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0711", "tmpfs", str(mount)],
                   check=True, capture_output=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def fill(path: Path) -> int:
    """Write until the disk refuses the last byte; returns how many bytes that took."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    written = 0
    try:
        for block in (1 << 20, 1 << 12, 1):
            while True:
                try:
                    written += os.write(fd, b"\0" * block)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return written


def connect(world: World, user: str) -> subprocess.CompletedProcess[str]:
    teacher = world.teachers[user]
    env = {**os.environ, "SOFTHSM2_CONF": str(teacher.token.conf),  # type: ignore[attr-defined]
           "STAFFROOM_FRESHCLAM_CONF": str(freshclam_conf(world.root, 0.5))}
    return subprocess.run([STAFFROOM, *world.connect_args(teacher)], env=env, text=True,
                          capture_output=True, timeout=90, stdin=subprocess.DEVNULL)


def wait_health(world: World, status: str, timeout: float = 30) -> dict[str, object]:
    end = time.monotonic() + timeout
    while True:
        doc = health(world.gateway.url, world.gateway.ca)
        if doc["status"] == status or time.monotonic() > end:
            return doc
        time.sleep(0.5)


def test_a_full_data_disk_refuses_clearly_keeps_health_and_recovers(
        small_disk: Path, tmp_path: Path, xvnc_desktop: object) -> None:
    world = build_world(tmp_path)
    gw = world.gateway
    assert gw.data == small_disk and gw.process is not None
    try:
        world.add_teacher("t.full", name="満杯 次郎")
        pw = tmp_path / "vnc.pw"
        pw.write_text(xvnc_desktop.password + "\n")  # type: ignore[attr-defined]
        world.admin.run("workspaces", "assign", "t.full", "--vnc",
                        f"127.0.0.1:{xvnc_desktop.port}", "--password-file", str(pw))  # type: ignore
        assert health(gw.url, gw.ca)["status"] == "ok"

        filler = gw.data / "filler"
        fill(filler)
        # A teacher's login: refused with the reason, not a hang or a traceback.
        refused = connect(world, "t.full")
        assert refused.returncode != 0
        assert FULL in refused.stderr and "free space" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        # An operator's login and an admin action: the same sentence, HTTP 503.
        late = gw.login(Persona(tmp_path / "home-late"), "admin", "admin-password-2026",
                        gw.totp_uri, check=False)
        assert late.code != 0 and FULL in late.err, late.err
        add = world.admin.run("users", "add", "t.new", "--name", "新人", "--school", "kita-es",
                              "--role", "teacher", check=False)
        assert add.code != 0 and FULL in add.err and "Traceback" not in add.err, add.err
        # The gateway is alive, and health answers quickly and says what is wrong.
        assert gw.process.poll() is None
        started = time.monotonic()
        doc = health(gw.url, gw.ca)
        assert time.monotonic() - started < 1.0
        assert doc["status"] == "degraded", doc
        assert FULL in doc["problems"]["audit"], doc  # type: ignore[index]
        users = world.admin.run("users", "list", "--json").json()  # reading still works
        assert "t.new" not in [u["id"] for u in users]  # type: ignore[union-attr]

        filler.unlink()  # space returns: no restart, no repair
        doc = wait_health(world, "ok")
        assert doc["status"] == "ok", doc
        world.admin.run("users", "add", "t.new", "--name", "新人", "--school", "kita-es",
                        "--role", "teacher")
        agent = Agent(world, "t.full", freshclam_conf(tmp_path, 0.5))
        try:
            agent.wait_err("Connected as", timeout=60)
        finally:
            agent.stop()
    finally:
        stop_gateway(gw)
    verify = subprocess.run([STAFFROOM, "audit", "verify", "--data", str(gw.data)],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stdout.startswith("OK"), verify.stdout
    kinds = [r.kind for r in iter_records(gw.data / "audit")]
    assert "gateway.resumed" in kinds  # the log itself says when writing worked again
    assert kinds.count("session.start") == 1


def test_a_full_recordings_disk_refuses_new_sessions_and_recovers(
        tmp_path: Path, xvnc_desktop: object) -> None:
    """Only the recordings' disk is full (the audit log has room): sessions must be recorded,
    so none starts, with the reason; operators carry on; health names the part."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    world = build_world(tmp_path)
    gw = world.gateway
    recordings = gw.data / "recordings"
    recordings.mkdir(mode=0o700, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(recordings)],
                   check=True, capture_output=True)
    try:
        world.add_teacher("t.recfull", name="録画 満杯")
        pw = tmp_path / "vnc.pw"
        pw.write_text(xvnc_desktop.password + "\n")  # type: ignore[attr-defined]
        world.admin.run("workspaces", "assign", "t.recfull", "--vnc",
                        f"127.0.0.1:{xvnc_desktop.port}", "--password-file", str(pw))  # type: ignore
        filler = recordings / "filler"
        fill(filler)
        refused = connect(world, "t.recfull")
        assert refused.returncode != 0
        assert "recording disk is full" in refused.stderr, refused.stderr
        assert "must be recorded" in refused.stderr and "Traceback" not in refused.stderr
        doc = health(gw.url, gw.ca)
        assert doc["status"] == "degraded" and "full" in doc["problems"]["recording"], doc  # type: ignore[index]
        assert "audit" not in doc["problems"]  # type: ignore[operator]
        assert list(recordings.glob("*/*/*.srec")) == []  # no empty, unreadable file left
        world.admin.run("users", "list")  # operators carry on: the audit log has room
        filler.unlink()
        doc = wait_health(world, "ok")
        assert doc["status"] == "ok", doc
        agent = Agent(world, "t.recfull", freshclam_conf(tmp_path, 0.5))
        try:
            agent.wait_err("Connected as", timeout=60)
        finally:
            agent.stop()
    finally:
        stop_gateway(gw)
        subprocess.run(["umount", "-l", str(recordings)], check=False, capture_output=True)
    failed = [r for r in iter_records(gw.data / "audit", kind="recording.failed")]
    assert len(failed) == 1 and "full" in str(failed[0].event.details["error"])


def test_retention_still_deletes_on_a_full_disk(small_disk: Path) -> None:
    subprocess.run([STAFFROOM, "init", str(small_disk), "--hostname", "127.0.0.1", "--json"],
                   check=True, capture_output=True)
    (small_disk / "policies" / "20-kita.toml").write_text(
        '[match]\nschools = ["kita-es"]\n\n[recording]\nretention_days = 30\n')
    t = (datetime.now(UTC) - timedelta(days=40)).timestamp()
    writer = RecordingWriter.create(
        recordings_root(small_disk), session_id="s-old", user="t.old", school="kita-es",
        width=64, height=64, signing_key=load_or_create_recording_key(small_disk),
        clock=lambda: t)
    writer.close(t + 60)
    context = open_context(small_disk)
    filler = small_disk / "filler"
    try:
        fill(filler)
        deleted = apply_retention(context)
        assert len(deleted) == 1 and not writer.path.exists()
        assert list_recordings(recordings_root(small_disk)) == []
    finally:
        filler.unlink()
        context.audit.close()
        context.store.close()
    records = list(iter_records(small_disk / "audit", kind="recording.delete"))
    assert [(r.event.subject, r.event.details["reason"]) for r in records] == [
        ("t.old", "retention")]
    verify = subprocess.run([STAFFROOM, "audit", "verify", "--data", str(small_disk)],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout
