"""The call centre's reset, end to end: `staffroom workspaces stop USER --reason R` ends a
teacher's sealed desktop (every process in it, setsid escapees too) and their live session, only
for admins and the CIO of the teacher's school, audited; a `vnc` desktop off the allow-list is
refused. Real gateway, agent, SoftHSM2 token, Xvnc and bubblewrap."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store.sqlite import SqliteStore
from tests.fixtures.agent import Agent, freshclam_conf
from tests.fixtures.gateway import Persona, World, running_world
from tests.fixtures.workspace import AS_ROOT, needs_sandbox, processes_running_as

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not AS_ROOT, reason="per-teacher accounts need the gateway to be root"),
    needs_sandbox,
]

POLICY = """
[match]
roles = ["teacher"]

[workspace]
session_command = "sh -c 'openbox & exec xterm'"
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("world"), policy_overrides=POLICY) as w:
        yield w


def processes_of(uid: int) -> dict[int, str]:
    """Live host pids running as ``uid`` (checked from the host side), with their comm."""
    return {pid: comm for pid, (_, comm) in processes_running_as(lambda u: u == uid).items()}


def other_cio(world: World) -> Persona:
    pw = world.root / "cio-minami.pw"
    pw.write_text("cio-minami-2026\n")
    info = world.admin.run("users", "add", "cio.minami", "--name", "南 CIO", "--school",
                           "minami-es", "--role", "cio", "--password-file", str(pw),
                           "--json").json()
    who = Persona(world.root / "home-cio-minami")
    world.gateway.login(who, "cio.minami", "cio-minami-2026", info["totp_uri"])  # type: ignore
    return who


async def test_stop_ends_the_desktop_everything_in_it_and_the_session(
    world: World, tmp_path: Path
) -> None:
    world.add_teacher("t.stuck")
    agent = Agent(world, "t.stuck", freshclam_conf(tmp_path, 0.5))
    try:
        await asyncio.to_thread(agent.viewer_url)
        store = SqliteStore(world.gateway.data / "state.db")
        uid = store.desktop_uid("t.stuck")
        store.close()
        assert uid is not None and uid not in (0, 65534)
        deadline = time.monotonic() + 20
        while "xterm" not in (running := processes_of(uid)).values():
            assert time.monotonic() < deadline, f"no xterm as {uid}: {running}"
            await asyncio.sleep(0.2)
        xterm = next(pid for pid, comm in running.items() if comm == "xterm")
        # The teacher leaves a process behind on purpose, outside the session's group.
        # Its own user namespace, unless the gateway runs in a chroot (sandbox mode "root").
        userns = [] if os.readlink(f"/proc/{xterm}/ns/user") == \
            os.readlink("/proc/self/ns/user") else ["-U"]
        escape = subprocess.run(
            ["setpriv", "--clear-groups", "--", "nsenter", "-t", str(xterm), *userns, "-m",
             "-p", "-n", "-r", "-w", "-S", str(uid), "-G", str(uid), "--", "sh", "-c",
             "setsid env -i sleep 779 </dev/null >/dev/null 2>&1 & echo started"],
            capture_output=True, text=True, timeout=20)  # fmt: skip
        assert escape.stdout.strip() == "started", escape.stderr
        while "sleep" not in processes_of(uid).values():
            assert time.monotonic() < deadline, "the escapee never ran"
            await asyncio.sleep(0.1)

        refused = other_cio(world).run("workspaces", "stop", "t.stuck", "--reason", "x",
                                       check=False)  # fmt: skip
        assert refused.code != 0 and "sleep" in processes_of(uid).values()
        done = world.cio.run("workspaces", "stop", "t.stuck", "--reason",
                             "stuck desktop, call 1234")  # fmt: skip
        assert "t.stuck: stopped its desktop; 1 live session(s) ended." in done.out
        assert processes_of(uid) == {}
        agent.wait_err("reset by your school's IT lead: stuck desktop, call 1234")
        records = world.admin.run("audit", "tail", "-n", "50", "--json").json()
        stops = [r for r in records if r["kind"] == "workspace.stop"]  # type: ignore
        assert len(stops) == 1 and stops[0]["actor"] == "cio.kita"
        assert stops[0]["details"]["reason"] == "stuck desktop, call 1234"
    finally:
        agent.stop()


async def test_vnc_desktop_off_the_allow_list_is_refused_and_audited(world: World) -> None:
    world.admin.run("users", "add", "t.far", "--name", "遠藤", "--school", "kita-es", "--role",
                    "teacher", "--password-file", str(world.root / "cio.pw"))
    refused = world.cio.run("workspaces", "assign", "t.far", "--vnc", "10.20.30.40:5900",
                            check=False)  # fmt: skip
    assert refused.code != 0
    assert ("The desktop address 10.20.30.40:5900 is not on this gateway's list of existing "
            "desktops") in refused.err
    records = world.admin.run("audit", "tail", "-n", "20", "--json").json()
    denied = [r for r in records if r["kind"] == "workspace.assign"  # type: ignore
              and r["outcome"] == "denied"]
    assert denied and denied[-1]["details"]["address"] == "10.20.30.40:5900"
