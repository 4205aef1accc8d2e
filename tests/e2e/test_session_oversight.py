"""Issue 13 (part A) end to end, with real parts (SoftHSM2 key, Xvnc desktop, the real agent
and gateway, Chromium on the viewer, ClamAV definition files in ClamAV's format):

* antivirus definitions made stale on the home PC during a live session: the agent's signed
  re-check says so, the teacher's page shows what is wrong and what to do, and after the grace
  the session ends — in the page and in the audit trail;
* an agent that stops reporting (frozen, its connection still open) has its session ended
  after the grace, audited as a missing re-check;
* the page then offers the gateway-signed work receipt, which `staffroom reports
  verify-receipt` accepts, and refuses after one changed byte;
* `staffroom reports hours --csv` for the month lists that session with its minutes;
* `/metrics` parses with Prometheus' own text parser and counts the live session; an address
  outside `metrics_allow` is refused (and audited); readiness answers apart from health.
"""

from __future__ import annotations

import asyncio
import csv
import http.client
import io
import json
import signal
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.agent import Agent, freshclam_conf
from tests.fixtures.clamav import write_cvd
from tests.fixtures.desktop_view import CHROMIUM_ARGS, wait_until
from tests.fixtures.desktops import NO_XIM
from tests.fixtures.gateway import World, running_world

pytestmark = pytest.mark.slow

SESSION = f'[match]\nroles = ["teacher"]\n\n[workspace]\nsession_command = "xterm {NO_XIM}"\n'
# Short clocks for one teacher only, so the test runs in seconds (the defaults are 15m and 5m).
FAST_POSTURE = ('[match]\nusers = ["t.stale", "t.silent"]\n\n[posture]\nrecheck_every = "2s"\n'
                'fail_grace = "6s"\non_fail = "end"\n')
SCRAPER = "127.0.0.2"  # the only address allowed to read /metrics here (loopback, not .1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("oversight"), policy_overrides=SESSION,
                       extra_policies={"60-fast-posture.toml": FAST_POSTURE},
                       config={"metrics_allow": [f"{SCRAPER}/32"]}) as w:
        yield w


def audit(world: World, user: str, kind: str) -> list[dict[str, object]]:
    return world.admin.run("audit", "export", "--json", "--user", user, "--kind",
                           kind).json()  # type: ignore[return-value]


async def test_stale_definitions_mid_session_warn_then_end_and_the_receipt_verifies(
    world: World, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    world.add_teacher("t.stale", name="山田 花子")
    conf = freshclam_conf(tmp_path, 0.5)
    database = Path(conf.read_text().split()[1])
    agent = Agent(world, "t.stale", conf)
    try:
        url = await asyncio.to_thread(agent.viewer_url)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            await page.goto(url)
            # The Hello (which turns input on) has arrived once the session info shows.
            await page.wait_for_function("() => document.getElementById('info').textContent")
            await page.locator("canvas").click()
            await page.keyboard.type("echo working")  # input: an active minute
            await page.keyboard.press("Enter")

            # A few signed re-checks pass (every ~2 s) before anything changes.
            async def rechecked() -> bool:
                return len(await asyncio.to_thread(audit, world, "t.stale",
                                                   "posture.recheck")) >= 2
            assert await wait_until(rechecked, timeout=20), "no re-checks arrived"
            assert await page.locator("#posture").is_hidden()

            # The home PC's definitions go stale (freshclam would have replaced them).
            write_cvd(database / "daily.cvd", datetime.now(UTC) - timedelta(days=9))
            warning = page.locator("#posture")
            await warning.wait_for(state="visible", timeout=15000)
            text = await page.locator("#posture-text").text_content() or ""
            assert "antivirus definitions are 9 days old" in text, text
            assert "freshclam" in text and "session ends in" in text, text
            assert await page.evaluate("document.body.dataset.state") == "connected"

            # No fix within the 6 s grace: the session ends, and the page says why.
            await page.locator("#ended").wait_for(state="visible", timeout=20000)
            ended = await page.locator("#ended-text").text_content() or ""
            assert "failed the security check" in ended and "9 days old" in ended, ended

            # The page offers the work receipt the gateway signed.
            link = page.locator("#receipt")
            await link.wait_for(state="visible", timeout=5000)
            async with page.expect_download() as download_info:
                await link.click()
            download = await download_info.value
            signed = Path(await download.path()).read_bytes()
            await browser.close()
        err = await asyncio.to_thread(agent.wait_err, "Work receipt saved")
        assert "security check" in err
    finally:
        agent.stop()

    rechecks = audit(world, "t.stale", "posture.recheck")
    outcomes = [(r["outcome"], r["details"].get("code")) for r in rechecks]  # type: ignore
    assert ("ok", None) in outcomes and ("failed", "definitions-stale") in outcomes, outcomes
    failed = next(r for r in rechecks if r["outcome"] == "failed")
    assert failed["details"]["reason"] == "changed"  # type: ignore[index]
    seqs = [r["details"]["seq"] for r in rechecks if "seq" in r["details"]]  # type: ignore
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    end = audit(world, "t.stale", "session.end")[-1]
    details = end["details"]
    assert details["code"] == "posture" and "9 days old" in details["reason"]  # type: ignore
    assert end["seq"] > failed["seq"]  # type: ignore[operator]

    # The receipt: what the page offered is what the agent saved; it verifies, and fails
    # after one changed byte.
    saved = world.root / "home-t.stale" / "receipts" / f"receipt-{end['session']}.json"
    assert saved.read_bytes() == signed
    fields = json.loads(signed)["receipt"]
    assert fields["session"] == end["session"] and fields["user"] == "t.stale"
    assert fields["active_minutes"] >= 1 and fields["active_minutes"] == details["active_minutes"]  # type: ignore
    good = world.admin.run("reports", "verify-receipt", str(saved), "--json").json()
    assert good["valid"] is True  # type: ignore[index]
    for where in (10, signed.index(b'"active_minutes":') + 17, len(signed) - 5):
        bad = tmp_path / f"changed-{where}.json"
        data = bytearray(signed)
        data[where] ^= 0x01
        bad.write_bytes(bytes(data))
        refused = world.admin.run("reports", "verify-receipt", str(bad), check=False)
        assert refused.code == 1 and "does NOT verify" in refused.err, refused
        assert "Traceback" not in refused.err
    key = tmp_path / "receipt.pub"
    world.cio.run("reports", "receipt-key", "--out", str(key))
    offline = world.cio.run("reports", "verify-receipt", str(saved), "--public-key", str(key))
    assert "The receipt verifies" in offline.out
    data = bytearray(signed)
    data[-2] ^= 0x01
    (tmp_path / "bad.json").write_bytes(bytes(data))
    assert world.cio.run("reports", "verify-receipt", str(tmp_path / "bad.json"),
                         "--public-key", str(key), check=False).code == 1

    # The month's work-hours sheet lists the session with plausible minutes.
    month = datetime.now().astimezone().strftime("%Y-%m")
    sheet = world.cio.run("reports", "hours", "--school", "kita-es", "--month", month,
                          "--user", "t.stale", "--csv").out
    rows = list(csv.DictReader(io.StringIO(sheet)))
    row = next(r for r in rows if r["session"] == end["session"])
    start, stop = datetime.fromisoformat(row["start"]), datetime.fromisoformat(row["end"])
    minutes = max(1, -(-int((stop - start).total_seconds()) // 60))
    assert 0 < (stop - start).total_seconds() < 300
    assert int(row["active_minutes"]) >= 1
    assert int(row["active_minutes"]) + int(row["idle_minutes"]) in (minutes, minutes + 1)
    assert row["ended_by"] == "posture" and row["complete"] == "true"
    assert row["name"] == "山田 花子" and row["school"] == "kita-es"
    # A CIO sees only their school.
    other = world.cio.run("reports", "hours", "--school", "minami-es", "--month", month,
                          check=False)
    assert other.code != 0 and "own school" in other.err


def test_a_session_whose_agent_stops_reporting_ends_after_the_grace(
    world: World, tmp_path: Path
) -> None:
    world.add_teacher("t.silent", name="高橋 進")
    agent = Agent(world, "t.silent", freshclam_conf(tmp_path, 0.5))
    try:
        agent.viewer_url()
        end = time.monotonic() + 20
        while not audit(world, "t.silent", "posture.recheck"):
            assert time.monotonic() < end, "no re-check arrived"
            time.sleep(0.3)
        # The home PC freezes the agent (the connection itself stays open): no more reports.
        agent.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            while not (ends := audit(world, "t.silent", "session.end")):
                assert time.monotonic() - stopped < 40, "the silent session did not end"
                time.sleep(0.5)
        finally:
            agent.proc.send_signal(signal.SIGCONT)
        # Missing after 1.25 × 2 s + 5 s, then the 6 s grace: well before the 20 s heartbeat.
        assert time.monotonic() - stopped < 25
        assert ends[-1]["details"]["code"] == "posture"  # type: ignore[index]
        assert "stopped sending its security check" in ends[-1]["details"]["reason"]  # type: ignore
        missing = [r for r in audit(world, "t.silent", "posture.recheck")
                   if r["outcome"] == "missing"]
        assert missing and missing[-1]["seq"] < ends[-1]["seq"]  # type: ignore[operator]
    finally:
        agent.stop()


def _get(port: int, path: str, ca: Path, source: str) -> tuple[int, bytes]:
    tls = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=10,
                                       source_address=(source, 0))
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


async def test_metrics_count_the_session_and_refuse_other_addresses(
    world: World, tmp_path: Path
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    gw = world.gateway
    world.add_teacher("t.metrics", name="鈴木 一郎")
    agent = Agent(world, "t.metrics", freshclam_conf(tmp_path, 0.5))
    try:
        await asyncio.to_thread(agent.viewer_url)
        live = world.admin.run("sessions", "list", "--json").json()
        assert any(s["user"] == "t.metrics" for s in live)  # type: ignore[union-attr]
        status, body = await asyncio.to_thread(_get, gw.port, "/metrics", gw.ca, SCRAPER)
        assert status == 200, body
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(body.decode())
                   for s in family.samples}
        assert samples[("staffroom_live_sessions", ())] == len(live)  # type: ignore[arg-type]
        assert samples[("staffroom_logins_total", (("code", "ok"), ("outcome", "ok")))] >= 1
        assert samples[("staffroom_desktop_starts_total", (("outcome", "started"),))] >= 1
        assert samples[("staffroom_audit_write_seconds_count", ())] > 0
        assert ("staffroom_frames_sent_total", ()) in samples
        assert ("staffroom_frame_encode_seconds_count", ()) in samples

        # Loopback, but not the configured scraper: refused, and the refusal is audited.
        status, body = await asyncio.to_thread(_get, gw.port, "/metrics", gw.ca, "127.0.0.1")
        assert status == 403 and b"metrics_allow" in body and b"staffroom_" not in body
        denied = world.admin.run("audit", "export", "--json", "--kind", "metrics.read").json()
        assert any(r["outcome"] == "denied" and r["source"] == "127.0.0.1"  # type: ignore
                   for r in denied)  # type: ignore[union-attr]

        # Readiness is its own endpoint, open like health.
        status, body = await asyncio.to_thread(_get, gw.port, "/api/v1/ready", gw.ca,
                                               "127.0.0.1")
        assert status == 200 and json.loads(body)["status"] == "ready"
    finally:
        agent.stop()
