"""Issue 10, no races: a key revoked or an account disabled while the desktop is still
starting ends that login — it never becomes a session — with the teacher told why, and the
refusal audited. Real gateway, real SoftHSM2 key, real Xvnc behind a door that holds the
gateway's connection (a desktop slow to start) until the officer has acted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.held import HeldDesktop, api
from tests.fixtures.agent import Agent, freshclam_conf
from tests.fixtures.gateway import World, running_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("races")) as w:
        yield w


def _start_held(world: World, user: str, desktop: object, tmp_path: Path) -> HeldDesktop:
    held = HeldDesktop(desktop.port)  # type: ignore[attr-defined]
    pw = tmp_path / "vnc.pw"
    pw.write_text(desktop.password + "\n")  # type: ignore[attr-defined]
    world.admin.run("workspaces", "assign", user, "--vnc", f"127.0.0.1:{held.port}",
                    "--password-file", str(pw))
    return held


def _audit(world: World, user: str) -> list[dict[str, object]]:
    return world.admin.run("audit", "export", "--json", "--user", user).json()  # type: ignore


@pytest.mark.parametrize("action", ["revoke", "disable"])
def test_an_officer_acting_during_a_cold_desktop_start_ends_that_login(
        world: World, tmp_path: Path, xvnc_desktop: object, action: str) -> None:
    user = f"t.race-{action}"
    world.add_teacher(user, name="競合 太郎")
    held = _start_held(world, user, xvnc_desktop, tmp_path)
    agent = Agent(world, user, freshclam_conf(tmp_path, 0.5))
    try:
        # The login passed; the gateway is now waiting on the desktop.
        assert held.arrived.wait(60), "".join(agent.err)
        gw = world.gateway
        if action == "revoke":
            status, _ = api(gw.url, gw.ca, world.cio.home, "POST", "/api/v1/keys/revoke",
                            {"user": user, "reason": "keyCompromise"})
        else:
            status, _ = api(gw.url, gw.ca, world.admin.home, "POST",
                            f"/api/v1/users/{user}/disable")
        assert status == 200
        held.release()  # the desktop comes up after the officer acted
        assert agent.proc.wait(timeout=30) != 0
    finally:
        err = agent.stop()
        held.close()
    sentence = ("Your key has been revoked: ask your school's IT lead for a new one."
                if action == "revoke" else "This account is disabled: ask your IT lead.")
    assert sentence in err, err
    assert "Connected as" not in err
    sessions = world.admin.run("sessions", "list", "--json").json()
    assert [s for s in sessions if s["user"] == user] == []  # type: ignore[index,union-attr]
    records = _audit(world, user)
    starts = [(r["outcome"], r["details"].get("code"), r["details"].get("stage"))  # type: ignore
              for r in records if r["kind"] == "session.start"]
    code = "cert-revoked" if action == "revoke" else "disabled"
    assert starts == [("denied", code, "attach")], starts
    # The login itself had passed (this was a race, not an ordinary refusal).
    assert [r["outcome"] for r in records if r["kind"] == "session.login"] == ["ok"]
    if action == "disable":  # and the login's own account write did not undo the disable
        users = world.admin.run("users", "list", "--json").json()
        assert next(u for u in users if u["id"] == user)["disabled"] is True  # type: ignore


def test_a_live_session_ends_before_the_revocation_is_written(world: World,
                                                               tmp_path: Path,
                                                               xvnc_desktop: object) -> None:
    """Ending the sessions comes first: the teacher is cut off even when recording the
    revocation would then fail."""
    user = "t.race-live"
    world.add_teacher(user, name="生存 花子")
    held = _start_held(world, user, xvnc_desktop, tmp_path)
    held.release()
    agent = Agent(world, user, freshclam_conf(tmp_path, 0.5))
    try:
        agent.wait_err("Connected as", timeout=60)
        gw = world.gateway
        status, body = api(gw.url, gw.ca, world.cio.home, "POST", "/api/v1/keys/revoke",
                           {"user": user, "reason": "keyCompromise"})
        assert status == 200, body
        assert agent.proc.wait(timeout=15) != 0
    finally:
        err = agent.stop()
        held.close()
    assert "Your key was revoked, so this session ended" in err, err
    kinds = [r["kind"] for r in _audit(world, user)]
    assert kinds.index("session.end") < kinds.index("key.revoke")
