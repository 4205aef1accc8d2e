"""Issue 10, a SIGKILL at any moment: the audit log still verifies (after the restart the
gateway cuts off a half-written line, or re-signs a record the head missed, and says so in
the log), and a recording that was being written verifies up to its last checkpoint and is
reported as *cut short* — never as forged."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.audit.keys import generate_signing_key, save_signing_key
from gateway.audit.log import AuditLog
from gateway.audit.verify import verify
from gateway.recording.verify import verify_recording
from tests.faults.held import api
from tests.fixtures.agent import Agent, freshclam_conf
from tests.fixtures.desktop_view import CHROMIUM_ARGS
from tests.fixtures.gateway import STAFFROOM, build_world, start_gateway, stop_gateway

pytestmark = pytest.mark.slow


def staffroom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STAFFROOM, *args], capture_output=True, text=True, timeout=60)


async def test_sigkill_during_a_live_session_then_restart(tmp_path: Path,
                                                           xvnc_desktop: object) -> None:
    from playwright.async_api import async_playwright

    world = build_world(tmp_path)
    gw = world.gateway
    try:
        world.add_teacher("t.kill", name="突然 停止")
        pw = tmp_path / "vnc.pw"
        pw.write_text(xvnc_desktop.password + "\n")  # type: ignore[attr-defined]
        world.admin.run("workspaces", "assign", "t.kill", "--vnc",
                        f"127.0.0.1:{xvnc_desktop.port}", "--password-file", str(pw))  # type: ignore
        xvnc_desktop.spawn("xterm", "-geometry", "60x12+20+20")  # type: ignore[attr-defined]
        agent = Agent(world, "t.kill", freshclam_conf(tmp_path, 0.5))
        try:
            url = await asyncio.to_thread(agent.viewer_url)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                                  args=CHROMIUM_ARGS)
                page = await browser.new_page()
                await page.goto(url)
                await page.wait_for_function(
                    "() => document.body.dataset.state === 'connected'")
                await page.locator("canvas").click(position={"x": 100, "y": 60})
                for i in range(4):  # a few frames, then a quiet screen past 10 s: the
                    await page.keyboard.type(f"echo {i} ")  # session's timer checkpoints it
                    await asyncio.sleep(0.5)
                await asyncio.sleep(12)
                assert gw.process is not None
                gw.process.send_signal(signal.SIGKILL)  # mid-session, mid-recording
                assert gw.process.wait(timeout=10) == -signal.SIGKILL
                gw.process = None
                await browser.close()
        finally:
            agent.stop()
        [path] = sorted((gw.data / "recordings").glob("*/*/*.srec"))
        cut = staffroom("recordings", "verify", str(path))
        assert cut.returncode == 4 and cut.stdout.startswith("CUT SHORT:"), cut.stdout
        assert "intact and signed" in cut.stdout and "forged" not in cut.stdout, cut.stdout

        start_gateway(gw)  # the restart reopens the log the killed process left
        audit = staffroom("audit", "verify", "--data", str(gw.data))
        assert audit.returncode == 0 and audit.stdout.startswith("OK"), audit.stdout
        rid = path.name.removesuffix(".srec")
        status, shown = api(gw.url, gw.ca, world.admin.home, "GET", f"/api/v1/recordings/{rid}")
        assert status == 200 and shown["cut_short"] and not shown["sealed"], shown
        assert shown["verified"] is False and "cut short" in shown["verify_message"]
    finally:
        stop_gateway(gw)
    audit = staffroom("audit", "verify", "--data", str(gw.data))
    assert audit.returncode == 0, audit.stdout


WRITER = """
import sys, time
from pathlib import Path
from gateway.audit.events import AuditEvent
from gateway.audit.keys import load_signing_key
from gateway.audit.log import AuditLog
from gateway.recording.writer import RecordingWriter

root = Path(sys.argv[1])
key = load_signing_key(root / "key.pem")
log = AuditLog.open_or_create(root / "audit", key, checkpoint_every=7)
rec = RecordingWriter.create(root / "recordings", session_id=sys.argv[2], user="t.kill",
                             school="kita-es", width=64, height=64, signing_key=key,
                             clock=time.time, checkpoint_every=5, checkpoint_seconds=0.05)
print("ready", flush=True)
i = 0
while True:
    i += 1
    pad = "x" * (i % 3000)
    log.append(AuditEvent("session.input", "ok", actor="t.kill", details={"n": i, "pad": pad}))
    rec.write_frame(bytes([0x02]) + bytes(i % 5000), time.time())
"""


def test_sigkill_at_random_moments_never_breaks_the_audit_log_or_a_recording(
        tmp_path: Path) -> None:
    """A writer appending audit records and recording frames as fast as it can, killed at
    random moments twelve times: every reopen succeeds, the log verifies each time, and every
    recording verifies as cut short (intact up to its last checkpoint), never as broken."""
    key = generate_signing_key()
    save_signing_key(tmp_path / "key.pem", key)
    rng = random.Random(int.from_bytes(os.urandom(4)))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for round_ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"s{round_}"],
                                stdout=subprocess.PIPE, env=env, text=True)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.01, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        AuditLog(tmp_path / "audit", key).close()  # what a restarting gateway does first
        result = verify(tmp_path / "audit", key.public_key())
        assert result.ok, (round_, result.message)
    recordings = sorted((tmp_path / "recordings").glob("*/*/*.srec"))
    assert len(recordings) == 12
    for path in recordings:
        checked = verify_recording(path, key.public_key())
        assert checked.cut_short and not checked.ok, checked.message
