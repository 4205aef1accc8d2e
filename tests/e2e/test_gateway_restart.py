"""Issue 12, part C end to end: a teacher's desktop outlives a gateway killed with SIGKILL, and the
teacher's agent resumes on its own through the restarted gateway (same DATA_DIR, same port) to
the same desktop, with the text typed before the kill still on the xterm's unsubmitted command
line. Real gateway, agent, SoftHSM2 token, bubblewrap and Xvnc; the desktop is read back through
its own X server (pixels, and the typed command run after the resume)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from websockets.asyncio.client import connect

from agent.login import Credentials, LoginDenied, handshake
from agent.token import open_token
from gateway.store.desktops import DesktopRecord
from gateway.store.sqlite import SqliteStore
from gateway.wire.login import Welcome
from gateway.workspace.sandbox import ns_members, start_time
from tests.e2e.test_login_refusals import posture
from tests.fixtures.agent import Agent, freshclam_conf
from tests.fixtures.desktop_view import (
    _x_env,
    close_enough,
    wait_for_window,
    wait_until,
    x_screenshot,
)
from tests.fixtures.gateway import (
    STAFFROOM,
    World,
    running_world,
    start_gateway,
    stop_gateway,
    wait_for_tls,
)
from tests.fixtures.workspace import AS_ROOT, needs_sandbox

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not AS_ROOT, reason="per-teacher accounts need the gateway to be root"),
    needs_sandbox,
]

# No XIM for the typed-into xterm: see tests/fixtures/desktops.py's NO_XIM.
POLICY = """
[match]
roles = ["teacher"]

[workspace]
session_command = "xterm -geometry 80x20+40+40 -fa Monospace -fs 14 -xrm '*openIm: false'"

[session]
reconnect_grace = "60s"
"""


SHORT_GRACE = """
[match]
users = ["t.late"]

[session]
reconnect_grace = "3s"
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("world"), policy_overrides=POLICY,
                       extra_policies={"60-late.toml": SHORT_GRACE}) as w:
        yield w


def registry_row(world: World, user: str) -> DesktopRecord | None:
    store = SqliteStore(world.gateway.data / "state.db")
    try:
        return store.get_desktop(user)
    finally:
        store.close()


def xvnc_of(row: DesktopRecord) -> tuple[int, dict[str, str]]:
    """Xvnc's host pid (in the recorded server room) and an environment that reaches it."""
    room = os.readlink(f"/proc/{row.server_pid}/ns/pid")
    for pid in ns_members(room):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if argv[0].endswith(b"Xvnc"):
            return pid, _x_env(pid, f":{row.display}", argv)
    raise AssertionError("no Xvnc in the recorded room")


def xdotool(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["xdotool", *args], env=env, text=True, capture_output=True,
                          check=True, timeout=15).stdout


@pytest.fixture(autouse=True)
def _restore_softhsm_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    """login() points SOFTHSM2_CONF at each teacher's token; put it back after each test."""
    monkeypatch.setenv("SOFTHSM2_CONF", os.environ.get("SOFTHSM2_CONF", ""))


async def login(world: World, user: str, resume: str | None = None) -> Welcome:
    """The agent's login handshake in-process (its own code), then the tunnel drops."""
    teacher = world.teachers[user]
    token = teacher.token
    os.environ["SOFTHSM2_CONF"] = str(token.conf)  # type: ignore[attr-defined]
    with open_token(token.module, token_label=token.label, pin=token.pin) as t:  # type: ignore
        key_id, cert = t.find_identity()

        async def sign(data: bytes) -> bytes:
            return t.sign(key_id, data)

        context = ssl.create_default_context(cafile=str(world.gateway.ca))
        url = world.gateway.url.replace("https://", "wss://") + "/tunnel"
        password = Path(teacher.password_file).read_text().strip()
        async with connect(url, ssl=context) as ws:
            return await handshake(  # type: ignore[no-any-return]
                ws, user=user, certificate_der=cert.public_bytes(serialization.Encoding.DER),
                posture=posture(), sign=sign, resume=resume,
                credentials=Credentials(lambda: password, lambda: None))


def restart_killed(world: World) -> None:
    kill_gateway(world)
    start_gateway(world.gateway)


def kill_gateway(world: World) -> None:
    process = world.gateway.process
    assert process is not None
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    world.gateway.process = None


async def type_unsaved(world: World, user: str) -> tuple[DesktopRecord, int, dict[str, str],
                                                         Path]:
    """Type a command into the desktop's xterm without running it: the text lives only there.
    Returns the registry row, Xvnc's pid, its X environment and the file Return would write."""
    row = registry_row(world, user)
    assert row is not None
    return (row, *await type_into(row))


async def type_into(row: DesktopRecord) -> tuple[int, dict[str, str], Path]:
    """`type_unsaved` on the desktop a registry row names (any store, any node)."""
    assert row.node and os.path.isabs(row.rfb_socket)
    xvnc, xenv = xvnc_of(row)
    window = wait_for_window(xenv, "xterm")
    xdotool(xenv, "mousemove", "200", "120")
    xdotool(xenv, "windowfocus", "--sync", window)
    await asyncio.sleep(2.0)  # the shell's prompt
    name = f"restart-proof-{os.getpid()}"
    proof = Path(row.home) / name
    proof.unlink(missing_ok=True)
    xdotool(xenv, "type", "--delay", "50", f"echo kept-before-the-kill > ~/{name}")
    await asyncio.sleep(2.0)
    return xvnc, xenv, proof


async def run_typed_line(xenv: dict[str, str], proof: Path) -> bool:
    """Return runs the line typed before the kill: True if it was all still there."""
    xdotool(xenv, "key", "Return")

    async def ran() -> bool:
        return proof.exists() and proof.read_text().strip() == "kept-before-the-kill"
    return bool(await wait_until(ran))


async def test_the_desktop_outlives_a_killed_gateway_and_the_agent_resumes_on_it(
        world: World, tmp_path: Path) -> None:
    world.add_teacher("t.kill")
    agent = Agent(world, "t.kill", freshclam_conf(tmp_path, 0.5))
    try:
        await asyncio.to_thread(agent.viewer_url)
        session = re.search(r"; session ([0-9a-f]+)\.", agent.wait_err("; session "))
        assert session is not None
        row, xvnc, xenv, proof = await type_unsaved(world, "t.kill")
        xvnc_start = start_time(xvnc)
        before = x_screenshot(xenv)

        kill_gateway(world)
        await asyncio.sleep(1.0)
        assert start_time(xvnc) == xvnc_start, "Xvnc died with the gateway"
        assert start_time(row.session_pid) == row.session_start, "the session room died"
        await asyncio.to_thread(agent.wait_err, "The connection to the gateway dropped", 20)
        await asyncio.to_thread(agent.wait_err, "(attempt 2,", 20)  # retrying, with status

        start_gateway(world.gateway)  # same DATA_DIR, same port
        back = time.monotonic()
        err = await asyncio.to_thread(agent.wait_err, "Resumed the same session.", 50)
        took = time.monotonic() - back
        print(f"resumed {took:.1f} s after the restarted gateway answered TLS")
        assert took < 15, "the agent's backoff is capped at 5 s between attempts"
        assert re.search(r"Connection to the gateway lost; resuming… \(attempt \d+, \d+ s left\)",
                         err), err
        assert agent.proc.poll() is None

        # The same desktop: the same Xvnc process, re-adopted (not restarted).
        again = registry_row(world, "t.kill")
        assert again is not None and again.server_pid == row.server_pid
        assert start_time(xvnc) == xvnc_start
        after = x_screenshot(xenv)
        assert close_enough(before, after, tolerance=8) > 0.995, "the desktop's pixels changed"
        # The unsubmitted line is still there: Return runs what was typed before the kill.
        assert await run_typed_line(xenv, proof), "the text typed before the kill was lost"

        sessions = world.admin.run("sessions", "list", "--json").json()
        mine = [s for s in sessions if s["user"] == "t.kill"]  # type: ignore[union-attr]
        assert [s["id"] for s in mine] == [session.group(1)] and mine[0]["attached"]
    finally:
        agent.stop()
    records = world.admin.run("audit", "export", "--json", "--user", "t.kill").json()
    kinds = [(r["kind"], r["outcome"]) for r in records]  # type: ignore[union-attr]
    assert ("workspace.adopt", "ok") in kinds and ("session.recover", "ok") in kinds
    recovered = next(r for r in records if r["kind"] == "session.recover")  # type: ignore
    assert recovered["session"] == session.group(1)


async def test_a_graceful_stop_leaves_the_desktop_for_the_next_start(world: World,
                                                                     tmp_path: Path) -> None:
    world.add_teacher("t.calm")
    agent = Agent(world, "t.calm", freshclam_conf(tmp_path, 0.5))
    try:
        await asyncio.to_thread(agent.viewer_url)
        row = registry_row(world, "t.calm")
        assert row is not None
        xvnc, _ = xvnc_of(row)
        started = start_time(xvnc)
        stop_gateway(world.gateway, keep_desktops=True)  # SIGTERM: maintenance
        await asyncio.to_thread(agent.wait_err, "shutting down for maintenance", 20)
        assert start_time(xvnc) == started, "a graceful stop ended the desktop"
    finally:
        agent.stop()
    start_gateway(world.gateway)
    rows = world.admin.run("workspaces", "list", "--json").json()
    assert [r["user"] for r in rows if r["user"] == "t.calm"] == ["t.calm"]  # type: ignore
    # Connecting again finds the same desktop.
    agent = Agent(world, "t.calm", freshclam_conf(tmp_path, 0.5))
    try:
        await asyncio.to_thread(agent.viewer_url)
        assert start_time(xvnc) == started
        assert registry_row(world, "t.calm").server_pid == row.server_pid  # type: ignore
    finally:
        agent.stop()
    world.admin.run("workspaces", "stop", "t.calm", "--reason", "end of the test")
    deadline = time.monotonic() + 10
    while start_time(xvnc) is not None:
        assert time.monotonic() < deadline, "workspaces stop left an adopted Xvnc running"
        await asyncio.sleep(0.1)
    assert registry_row(world, "t.calm") is None


async def test_a_resume_secret_resumes_once_even_across_gateway_deaths(world: World) -> None:
    world.add_teacher("t.twice")
    first = await login(world, "t.twice")
    assert first.resume_token and not first.resumed
    restart_killed(world)
    resumed = await login(world, "t.twice", resume=first.resume_token)
    assert resumed.resumed and resumed.session == first.session
    assert resumed.resume_token not in (None, first.resume_token)
    restart_killed(world)  # the old secret is refused by a gateway that never saw it used
    with pytest.raises(LoginDenied) as refused:
        await login(world, "t.twice", resume=first.resume_token)
    assert refused.value.code == "resume-expired"
    again = await login(world, "t.twice", resume=resumed.resume_token)  # the new one works
    assert again.resumed and again.session == first.session


async def test_a_resume_after_the_grace_is_refused_in_one_sentence(world: World) -> None:
    world.add_teacher("t.late")
    first = await login(world, "t.late")
    kill_gateway(world)
    await asyncio.sleep(5)  # the grace is 3 s
    start_gateway(world.gateway)
    with pytest.raises(LoginDenied) as refused:
        await login(world, "t.late", resume=first.resume_token)
    assert refused.value.code == "resume-expired"
    assert str(refused.value) == (
        "The session could not be resumed (it has ended, or the link was lost too long): run "
        "`staffroom agent connect` again.")


def second_node(world: World, root: Path) -> Path:
    """Node B on this host: its own copy of DATA_DIR (CA, keys, config, policies, audit log),
    the same database (node A's state file), the same listening address."""
    data = root / "node-b"
    shutil.copytree(world.gateway.data, data,
                    ignore=shutil.ignore_patterns("state.db*", "homes", "home-images",
                                                  "recordings"))
    config = data / "gateway.json"
    settings = json.loads(config.read_text())
    settings["database"] = f"sqlite:///{world.gateway.data / 'state.db'}"
    config.write_text(json.dumps(settings, indent=2) + "\n")
    return data


async def test_another_node_on_the_host_takes_the_resume_to_the_same_desktop(
        world: World, tmp_path: Path) -> None:
    world.add_teacher("t.node")
    agent = Agent(world, "t.node", freshclam_conf(tmp_path, 0.5))
    node_b: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(agent.viewer_url)
        row, xvnc, xenv, proof = await type_unsaved(world, "t.node")
        xvnc_start = start_time(xvnc)
        kill_gateway(world)
        data_b = second_node(world, tmp_path)
        with (tmp_path / "node-b.log").open("wb") as log:
            node_b = subprocess.Popen([STAFFROOM, "gateway", "--data", str(data_b), "--node",
                                       "node-b"], stdout=log, stderr=log,
                                      start_new_session=True)
        wait_for_tls(world.gateway.port, world.gateway.ca)
        await asyncio.to_thread(agent.wait_err, "Resumed the same session.", 50)
        moved = registry_row(world, "t.node")
        assert moved is not None and moved.node == "node-b" and row.node != "node-b"
        assert moved.server_pid == row.server_pid and start_time(xvnc) == xvnc_start
        assert await run_typed_line(xenv, proof), "the text typed before the kill was lost"
        records = world.admin.run("audit", "export", "--json", "--user", "t.node").json()
        got = {(r["kind"], r["outcome"]): r for r in records}  # type: ignore[union-attr]
        assert got[("workspace.adopt", "ok")]["details"] == {
            "display": f":{row.display}", "from_node": row.node, "node": "node-b"}
        assert got[("session.recover", "ok")]["details"]["from_node"] == row.node
    finally:
        agent.stop()
        if node_b is not None:
            node_b.terminate()
            node_b.wait(timeout=15)
        start_gateway(world.gateway)  # node A again, for the other tests
