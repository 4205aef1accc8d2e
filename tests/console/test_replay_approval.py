"""Two-person replay against the real gateway (issue 13): with `recording.replay_approval` on, an
officer cannot replay or export a recording before a second officer approves their request, nor
approve their own; after the approval they can, for that recording and purpose only. Through the
API, the `staffroom recordings` commands and the console's Recordings page in Chromium; every
step (and every refusal) is in the audit trail.

The console world turns the rule off for its other recordings (tests/fixtures/console.py); this
module turns it back on for the recordings of `r.appr` with a narrower policy file and SIGHUP.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import Browser

from gateway.audit.keys import load_signing_key
from gateway.recording.store import recordings_root
from tests.fixtures.console import ConsoleWorld, add_operator
from tests.fixtures.console_media import Media, recorded_as, signed_in_page
from tests.fixtures.gateway import Persona
from tests.fixtures.recording import Recorded, record_session

pytestmark = pytest.mark.slow

OWNER = "r.appr"
APPROVAL_POLICY = f"""[match]
users = ["{OWNER}"]

[recording]
replay_approval = true
approval_valid_for = "2h"
"""
# One operator per way of signing in (each TOTP code is single use).
OFFICERS = {
    "sec.req.api": ("officer", None), "sec.ok.api": ("officer", None),
    "sec.req.cli": ("officer", None), "sec.ok.cli": ("officer", None),
    "sec.req.ui": ("officer", None), "sec.ok.ui": ("officer", None),
    "sec.appr.minami": ("officer", "minami-es"),
}
REASON = "Parents' complaint 2026-14: check what was shown on 3 December"


@dataclass
class Approvals:
    cw: ConsoleWorld
    api: Recorded
    cli: Recorded
    ui: Recorded

    @staticmethod
    def rid(rec: Recorded) -> str:
        return rec.writer.header.recording_id


@pytest.fixture(scope="module")
def approvals(console_media: Media) -> Approvals:
    cw = console_media.cw
    data = cw.world.gateway.data
    key = load_signing_key(data / "audit-signing.key")
    with recorded_as(OWNER, "kita-es"):
        recs = [record_session(recordings_root(data), key, seed=40 + i, frames=6)
                for i in range(3)]
    for user, (role, school) in OFFICERS.items():
        if user not in cw.operators:
            cw.operators[user] = add_operator(cw.world, user, role, school)
    (data / "policies" / "60-approval.toml").write_text(APPROVAL_POLICY)
    assert cw.world.gateway.process is not None
    cw.world.gateway.process.send_signal(signal.SIGHUP)
    rid = Approvals.rid(recs[0])
    end = time.monotonic() + 20
    while time.monotonic() < end:  # the reload is asynchronous: wait until the rule applies
        rows = cw.world.admin.run("recordings", "list", "--json", "--user", OWNER).json()
        if any(r["id"] == rid and r["approval_required"] for r in rows):  # type: ignore[union-attr]
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the gateway did not pick up the approval policy")
    return Approvals(cw, *recs)


async def audit_of(cw: ConsoleWorld, kind: str, rid: str) -> list[dict[str, Any]]:
    status, data, _ = await cw.request(
        "GET", f"/api/v1/audit?kind={kind}&limit=500",
        cookie=(await cw.sign_in("sec.ok.api")).cookie)
    assert status == 200, data
    return [r for r in data["records"] if r["details"].get("recording") == rid]


async def test_api_no_replay_before_a_second_officers_approval(approvals: Approvals) -> None:
    cw, rid = approvals.cw, approvals.rid(approvals.api)
    asker, approver = await cw.sign_in("sec.req.api"), await cw.sign_in("sec.ok.api")
    minami = await cw.sign_in("sec.appr.minami")

    async def call(who: Any, method: str, path: str, body: object = None) -> tuple[int, Any]:
        status, data, _ = await cw.request(method, path, cookie=who.cookie, origin=cw.origin,
                                           csrf=who.csrf, body=body)
        return status, data

    window = f"/api/v1/recordings/{rid}/window?t=0&first=1"
    status, data = await call(asker, "GET", window)
    assert (status, data["error"]) == (403, "approval-required")
    assert "second officer's approval" in data["message"]
    assert (await call(asker, "GET", f"/api/v1/recordings/{rid}/file"))[0] == 403
    status, listed = await call(asker, "GET", f"/api/v1/recordings?user={OWNER}")
    row = next(r for r in listed["recordings"] if r["id"] == rid)
    assert row["approval_required"] is True and row["approved_by_request"] is None

    status, short = await call(asker, "POST", f"/api/v1/recordings/{rid}/requests",
                               {"reason": "x"})
    assert status == 400 and "reason" in short["message"]
    status, made = await call(asker, "POST", f"/api/v1/recordings/{rid}/requests",
                              {"reason": REASON})
    assert status == 201 and made["state"] == "pending" and made["requester"] == "sec.req.api"
    req = made["id"]

    # Nobody approves their own request; an officer of another school cannot either.
    status, own = await call(asker, "POST", f"/api/v1/replay-requests/{req}/approve")
    assert status == 403 and "your own request" in own["message"]
    assert (await call(minami, "POST", f"/api/v1/replay-requests/{req}/approve"))[0] == 403
    assert (await call(asker, "GET", window))[0] == 403

    status, ok = await call(approver, "POST", f"/api/v1/replay-requests/{req}/approve",
                            {"note": "case file 14"})
    assert status == 200 and ok["state"] == "approved" and ok["decided_by"] == "sec.ok.api"
    assert (await call(approver, "POST", f"/api/v1/replay-requests/{req}/decline"))[0] == 409

    status, body = await call(asker, "GET", window)
    assert status == 200 and isinstance(body, bytes) and len(body) > 12
    # A replay approval: no export, and nobody else (not even the approver) gets to replay.
    assert (await call(asker, "GET", f"/api/v1/recordings/{rid}/file"))[0] == 403
    assert (await call(approver, "GET", window))[0] == 403
    other = approvals.rid(approvals.cli)
    assert (await call(asker, "GET", f"/api/v1/recordings/{other}/window?t=0"))[0] == 403

    # The whole story in the audit trail, refusals included, the replay naming its approval.
    asked = await audit_of(cw, "recording.request", rid)
    assert [(r["actor"], r["details"]["request"]) for r in asked] == [("sec.req.api", req)]
    approvals_seen = await audit_of(cw, "recording.approve", rid)
    assert {(r["actor"], r["outcome"]) for r in approvals_seen} == {
        ("sec.req.api", "denied"), ("sec.ok.api", "ok")}
    replays = await audit_of(cw, "recording.replay", rid)
    assert ("sec.req.api", "denied") in {(r["actor"], r["outcome"]) for r in replays}
    (done,) = [r for r in replays if r["outcome"] == "ok"]
    assert done["actor"] == "sec.req.api" and done["details"]["request"] == req
    assert any(r["outcome"] == "denied" and r["actor"] == "sec.req.api"
               for r in await audit_of(cw, "recording.export", rid))


def test_cli_request_approve_decline_and_export(approvals: Approvals) -> None:
    cw, rid = approvals.cw, approvals.rid(approvals.cli)
    gw, ops = cw.world.gateway, cw.operators
    asker = Persona(cw.world.root / "home-sec.req.cli")
    approver = Persona(cw.world.root / "home-sec.ok.cli")
    for who, user in ((asker, "sec.req.cli"), (approver, "sec.ok.cli")):
        gw.login(who, user, ops[user].password, ops[user].totp_uri)
    out = cw.world.root / "evidence.srec"

    refused = asker.run("recordings", "export", rid, "--out", str(out), check=False)
    assert refused.code != 0 and "second officer's approval" in refused.err
    assert not out.exists()
    declined = asker.run("recordings", "request", rid, "--reason", REASON).out.strip()
    req = asker.run("recordings", "request", rid, "--reason", REASON, "--export").out.strip()
    assert req.startswith("rr-") and declined.startswith("rr-") and req != declined
    own = asker.run("recordings", "approve", req, check=False)
    assert own.code != 0 and "cannot approve or decline your own request" in own.err

    pending = approver.run("recordings", "requests", "--json").json()
    mine = {r["id"]: r for r in pending if r["recording"] == rid}  # type: ignore[union-attr]
    assert set(mine) == {req, declined} and mine[req]["purpose"] == "export"
    assert mine[req]["reason"] == REASON and mine[req]["state"] == "pending"
    said = approver.run("recordings", "decline", declined, "--note", "not needed").out
    assert f"Declined {declined}" in said
    said = approver.run("recordings", "approve", req).out
    assert f"Approved {req}: sec.req.cli may export recording {rid} until" in said
    table = approver.run("recordings", "requests", "--all").out
    assert req in table and "approved" in table and "declined" in table

    asker.run("recordings", "export", rid, "--out", str(out))
    assert out.read_bytes() == approvals.cli.path.read_bytes()
    again = approver.run("recordings", "approve", req, check=False)
    assert again.code != 0 and "already been approved" in again.err


async def test_console_request_then_another_officer_approves_then_play(
    approvals: Approvals, chromium: Browser
) -> None:
    cw, rid = approvals.cw, approvals.rid(approvals.ui)
    row = f"#recordings-table tr[data-recording='{rid}']"
    c = await signed_in_page(chromium, cw, "sec.req.ui", view="recordings")
    page = c.page
    await page.wait_for_selector(f"{row} button[data-action=request]")
    assert await page.locator(f"{row} button[data-action=play]").count() == 0
    assert await page.locator(f"{row} a[data-action=export]").count() == 0
    await page.click(f"{row} button[data-action=request]")
    await page.fill("dialog.ask textarea[name=reason]", REASON)
    await page.click("dialog.ask button[type=submit]")
    await page.wait_for_selector(f"{row} [data-state=pending]")
    req_row = f"#requests-table tr[data-recording='{rid}'][data-state=pending]"
    await page.wait_for_selector(req_row)
    assert await page.locator(f"{req_row} button[data-action=approve]").count() == 0  # own
    req = await page.get_attribute(req_row, "data-request")

    other = await signed_in_page(chromium, cw, "sec.ok.ui", view="recordings", locale="ja-JP")
    mine = f"#requests-table tr[data-request='{req}']"
    await other.page.wait_for_selector(f"{mine} button[data-action=approve]")
    assert await other.page.text_content(f"{mine} button[data-action=approve]") == "承認"
    assert await other.page.text_content("#requests-title") == "再生・書き出しの申請"
    await other.page.click(f"{mine} button[data-action=approve]")
    await other.page.wait_for_selector(f"{mine}[data-state=approved]")
    # The approver did not ask: the recording stays closed to them.
    assert await other.page.locator(f"{row} button[data-action=play]").count() == 0

    await page.reload()
    await page.wait_for_selector(f"{row} button[data-action=play]")
    assert await page.locator(f"{row} a[data-action=export]").count() == 0  # replay only
    await page.click(f"{row} button[data-action=play]")
    await page.wait_for_selector(f"#player[data-recording='{rid}'][data-state=playing]")
    assert c.errors == [] and other.errors == []
    await c.context.close()
    await other.context.close()
