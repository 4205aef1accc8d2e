"""Lock-down of per-user desktops, checked from inside a real session: network, quota, printing.

Commands run "in the session" enter the session's sandbox (its user, mount, PID and network
namespaces) as its teacher with the session's environment and file-size limit — exactly what an
app the teacher starts would get.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.workspace import WorkspaceManager, egress, lockdown, netns
from gateway.workspace.base import InvalidAssignment
from gateway.workspace.confinement import Limits
from gateway.workspace.desktop import Account, XvncDesktop
from gateway.workspace.procs import marked_processes
from gateway.workspace.settings import DesktopSettings
from gateway.workspace.xvnc import check_enforceable
from tests.fixtures.workspace import (
    AS_ROOT,
    in_desktop,
    needs_sandbox,
    sealed,
    tcp_listening_in,
    unmount_under,
)

SESSION = ["sh", "-c", "openbox & exec xterm"]
QUOTA = 16 * 1024 * 1024
MiB = 1024 * 1024

_root = pytest.mark.skipif(not AS_ROOT, reason="namespaces and mounts need root")


def needs_root(test):  # type: ignore[no-untyped-def]
    return needs_sandbox(_root(test))


# ---------------------------------------------------------------- pure: policy → limits


@pytest.mark.parametrize(
    ("entries", "rules", "skipped"),
    [
        (["127.0.0.1:8080"], [("127.0.0.1", 8080)], []),
        (["Files.School.example:445"], [("files.school.example", 445)], []),
        (["[::1]:631", "[::1]:631"], [("::1", 631)], []),
        (["files.school.example", "[fd00::5]"], [], ["files.school.example", "[fd00::5]"]),
    ],
)
def test_allowed_hosts_become_relay_rules(
    entries: list[str], rules: list[tuple[str, int]], skipped: list[str]
) -> None:
    got, left = egress.parse_allowed_hosts(entries)
    assert [(r.host, r.port) for r in got] == rules
    assert list(left) == skipped


@pytest.mark.parametrize(
    "entry", ["", "host:0", "host:65536", "host:x", "0.0.0.0:80", "224.0.0.1:80", "a..b:1", "[::1"]
)
def test_bad_allowed_hosts_are_refused(entry: str) -> None:
    with pytest.raises(InvalidAssignment):
        egress.parse_allowed_hosts([entry])


def test_too_many_allowed_hosts_are_refused() -> None:
    with pytest.raises(InvalidAssignment, match="At most"):
        egress.parse_allowed_hosts([f"10.0.0.1:{p}" for p in range(1, egress.MAX_RULES + 2)])


def test_namespace_loopback_gets_only_non_loopback_addresses() -> None:
    batch = netns.loopback_commands(["127.0.0.1", "::1", "10.1.2.3", "fd00::5", "10.1.2.3"])
    assert batch.splitlines() == [
        "link set lo up",
        "addr add 10.1.2.3/32 dev lo",
        "addr add fd00::5/128 dev lo",
    ]


def test_wrappers_follow_the_policy() -> None:
    closed = lockdown.wrappers(printing=False, clipboard=False)
    assert {"lp", "lpr", "lpstat", "vncconfig", "autocutsel"} <= set(closed)
    assert f"\n{lockdown.PRINTING_OFF}\n" in closed["lp"]
    assert lockdown.wrappers(printing=True, clipboard=True) == {}


def test_limits_that_cannot_be_enforced_refuse_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    teacher = Account("nobody", 65534, 65534, switch=True)
    with pytest.raises(InvalidAssignment, match="root could leave"):
        check_enforceable(Account("root", 0, 0, switch=False), Limits())
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(InvalidAssignment, match="needs the gateway to run as root"):
        check_enforceable(teacher, Limits())
    with pytest.raises(InvalidAssignment, match="home quota"):
        check_enforceable(teacher, Limits(egress=None, home_quota=QUOTA))
    check_enforceable(teacher, Limits(egress=None, home_quota=None))  # explicitly opted out


# ---------------------------------------------------------------- a real locked-down desktop


class Echo:
    """A TCP echo listener on host loopback: a "school server" the policy may or may not list."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Echo:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"school:" + await reader.read(100))
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(echo, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="staffroom-ws-test-"))
    path.chmod(0o711)
    yield path
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers() -> AsyncIterator[tuple[Echo, Echo]]:
    allowed, other = await Echo().start(), await Echo().start()
    yield allowed, other
    await allowed.close()
    await other.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def manager(data_dir: Path, servers: tuple[Echo, Echo]) -> AsyncIterator[WorkspaceManager]:
    if not AS_ROOT:
        pytest.skip("namespaces and mounts need root")
    mgr = WorkspaceManager(
        data_dir,
        session_command=SESSION,
        geometry="800x600",
        **sealed(data_dir),
        input_method=False,
        display_base=780,
        allowed_hosts=[f"127.0.0.1:{servers[0].port}", "files.invalid"],
        home_quota_bytes=QUOTA,
    )
    yield mgr
    await mgr.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def desktop(manager: WorkspaceManager) -> XvncDesktop:
    started = time.monotonic()
    await manager.attach("k.sato")
    assert time.monotonic() - started < 2.0, "a locked-down desktop should start in under 2 s"
    found = manager.xvnc.get("k.sato")
    assert found is not None
    return found


def in_session(
    desktop: XvncDesktop, script: str, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as an app of the session would: its sandbox, account and environment."""
    assert desktop.session is not None and desktop.session.init_pid is not None
    # Apps inherit the session's RLIMIT_FSIZE (the fallback quota sets it): so do we.
    limits = Path(f"/proc/{desktop.session.init_pid}/limits").read_text().splitlines()
    fsize = next(line.split()[3] for line in limits if line.startswith("Max file size"))
    return in_desktop(desktop, f"prlimit --fsize={fsize} --pid $$ >/dev/null; {script}",
                      timeout)


PROBE = """
import socket, sys
port = int(sys.argv[1])
try:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(b"ping"); s.shutdown(socket.SHUT_WR)
        print(s.recv(100).decode())
except OSError as e:
    print("blocked", e.__class__.__name__)
"""


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@needs_root
async def test_allowed_school_server_is_reachable_another_port_is_not(
    desktop: XvncDesktop, servers: tuple[Echo, Echo]
) -> None:
    allowed, other = servers
    script = f"/usr/bin/python3 -c '{PROBE}' {{}}"
    ok = await asyncio.to_thread(in_session, desktop, script.format(allowed.port))
    assert ok.stdout.strip() == "school:ping", ok.stderr
    denied = await asyncio.to_thread(in_session, desktop, script.format(other.port))
    assert denied.stdout.strip() == "blocked ConnectionRefusedError", denied.stderr
    # Not even the gateway's own port 22/443-style services on its 127.0.0.1: another world.
    for port in (22, 443, 5900):
        vnc = await asyncio.to_thread(in_session, desktop, script.format(port))
        assert vnc.stdout.strip().startswith("blocked")


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@needs_root
async def test_session_has_no_interface_or_route_out(desktop: XvncDesktop) -> None:
    links = await asyncio.to_thread(in_session, desktop, "ip -o link show")
    assert [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"]
    routes = await asyncio.to_thread(in_session, desktop, "ip route show; ip -6 route show")
    assert "default" not in routes.stdout
    # Xvnc shares the namespace and listens on no TCP port: only the relay's listener is there.
    assert desktop.xvnc_pid is not None
    assert len(tcp_listening_in(desktop.xvnc_pid)) == 1


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@needs_root
async def test_x_clients_in_the_namespace_reach_the_display(desktop: XvncDesktop) -> None:
    info = await asyncio.to_thread(in_session, desktop, "xdpyinfo | grep dimensions")
    assert info.returncode == 0, info.stderr
    assert "800x600" in info.stdout


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@needs_root
async def test_printing_fails_with_the_policy_sentence(desktop: XvncDesktop) -> None:
    for command in ("lp /etc/hostname", "echo hi | lpr", "lpstat -p"):
        done = await asyncio.to_thread(in_session, desktop, command)
        assert done.returncode == 1, command
        assert lockdown.PRINTING_OFF in done.stderr, command
    env = await asyncio.to_thread(in_session, desktop, "echo $CUPS_SERVER")
    assert not Path(env.stdout.strip()).exists()  # no CUPS socket to find


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@needs_root
async def test_clipboard_cannot_be_turned_back_on_from_inside(desktop: XvncDesktop) -> None:
    wrapper = await asyncio.to_thread(in_session, desktop, "vncconfig -nowin")
    assert wrapper.returncode == 1 and lockdown.CLIPBOARD_OFF in wrapper.stderr
    # The real tool, by full path: Xvnc refuses to change its parameters at run time.
    await asyncio.to_thread(in_session, desktop, "/usr/bin/vncconfig -set AcceptCutText=1")
    got = await asyncio.to_thread(in_session, desktop, "/usr/bin/vncconfig -get AcceptCutText")
    assert got.stdout.strip() == "0", got.stderr


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@needs_root
async def test_no_automount_or_bridge_daemons_can_run(desktop: XvncDesktop) -> None:
    names = await asyncio.to_thread(
        in_session,
        desktop,
        "dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus "
        "org.freedesktop.DBus.ListActivatableNames",
    )
    assert names.returncode == 0, names.stderr
    activatable = [line.split('"')[1] for line in names.stdout.splitlines() if '"' in line]
    assert activatable == ["org.freedesktop.DBus"]  # nothing can be D-Bus-activated
    env = await asyncio.to_thread(in_session, desktop, "echo $GIO_USE_VOLUME_MONITOR $GIO_USE_VFS")
    assert env.stdout.split() == ["unix", "local"]
    running = set()
    for pid in marked_processes(desktop.marker.encode()):
        with contextlib.suppress(OSError):
            running.add(Path(f"/proc/{pid}/comm").read_text().strip())
    assert running and not running & set(lockdown.FORBIDDEN_PROGRAMS)
    assert {"xterm", "openbox", "dbus-daemon"} <= running


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@needs_root
async def test_gtk_apps_start_without_animations_unless_the_teacher_wants_them(
    desktop: XvncDesktop,
) -> None:
    """GTK itself, inside the session, reads the desktop's defaults (toolkit_defaults); the
    defaults file is the gateway's, and the teacher's own settings.ini still wins."""

    def query(name: str) -> str:
        done = in_session(desktop, f"gtk-query-settings {name}")
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert await asyncio.to_thread(query, "enable-animations") == "gtk-enable-animations: FALSE"
    assert "gtk-cursor-blink: FALSE" in await asyncio.to_thread(query, "cursor-blink")
    tamper = await asyncio.to_thread(
        in_session, desktop, 'echo "gtk-enable-animations = true" >> '
        '"${XDG_CONFIG_DIRS%%:*}/gtk-3.0/settings.ini"')
    assert tamper.returncode != 0  # root's file, read-only to the teacher
    own = "$HOME/.config/gtk-3.0/settings.ini"
    wrote = await asyncio.to_thread(
        in_session, desktop, f'mkdir -p "$HOME/.config/gtk-3.0" && '
        f"printf '[Settings]\\ngtk-enable-animations = true\\n' > \"{own}\"")
    assert wrote.returncode == 0, wrote.stderr
    try:
        assert await asyncio.to_thread(query, "enable-animations") == \
            "gtk-enable-animations: TRUE"
    finally:
        await asyncio.to_thread(in_session, desktop, f'rm -f "{own}"')


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@needs_root
async def test_writing_past_the_home_quota_fails(desktop: XvncDesktop) -> None:
    done = await asyncio.to_thread(
        in_session, desktop, f"dd if=/dev/zero of=big bs=1M count={2 * QUOTA // MiB} 2>&1"
    )
    assert done.returncode != 0
    if Path("/dev/loop-control").exists():
        # The home is its own ext4 image of the quota's size.
        assert os.path.ismount(desktop.spec.home)
        assert "No space left on device" in done.stdout
        st = os.statvfs(desktop.spec.home)
        assert st.f_blocks * st.f_frsize <= QUOTA
    else:
        # No loop devices (a bare chroot): the fallback's per-file limit (RLIMIT_FSIZE) stops
        # the write — SIGXFSZ ("File size limit exceeded") or EFBIG ("File too large").
        assert "File size limit exceeded" in done.stdout or "File too large" in done.stdout, \
            done.stdout
        assert (desktop.spec.home / "big").stat().st_size <= QUOTA
    await asyncio.to_thread(in_session, desktop, "rm -f big")


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@needs_root
async def test_home_persists_and_everything_is_released_at_stop(
    manager: WorkspaceManager, desktop: XvncDesktop
) -> None:
    wrote = await asyncio.to_thread(in_session, desktop, "echo lesson-plan > notes.txt")
    assert wrote.returncode == 0, wrote.stderr
    home, marker = desktop.spec.home, desktop.marker.encode()
    assert desktop.confinement is not None and desktop.confinement.netns is not None
    ns_fd = desktop.confinement.netns.fd
    await manager.stop("k.sato")
    assert marked_processes(marker) == []
    assert not os.path.ismount(home)
    assert desktop.confinement.netns.fd == -1 and not Path(f"/proc/self/fd/{ns_fd}").exists()
    assert (
        "home-images/k.sato.ext4"
        not in subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    )
    await manager.attach("k.sato")
    again = manager.xvnc.get("k.sato")
    assert again is not None and again is not desktop
    assert (home / "notes.txt").read_text() == "lesson-plan\n"


# ---------------------------------------------------------------- per-teacher policy


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@needs_root
async def test_each_desktop_follows_its_own_teachers_policy(
        workspace_data_dir: Path, servers: tuple[Echo, Echo]) -> None:
    """Two schools' policies on one gateway: each teacher's desktop reaches her own school's
    server and no other, and printing is as her policy says (the manager's own settings, the
    board's defaults, are used by neither)."""
    allowed, other = servers
    own = {
        "p.kita": DesktopSettings.of(SESSION, allowed_hosts=[f"127.0.0.1:{allowed.port}"],
                                     home_quota_bytes=QUOTA),
        "p.minami": DesktopSettings.of(SESSION, allowed_hosts=[f"127.0.0.1:{other.port}"],
                                       home_quota_bytes=QUOTA, printing=True,
                                       stop_unattached_after=1.0),
    }
    mgr = WorkspaceManager(workspace_data_dir, session_command=SESSION, geometry="800x600",
                           **sealed(workspace_data_dir), input_method=False, display_base=820,
                           home_quota_bytes=QUOTA, settings_for=lambda u: looked_up(u))
    lookups: list[str] = []

    def looked_up(user: str) -> DesktopSettings:
        lookups.append(user)
        return own[user]

    try:
        for user in own:
            await mgr.attach(user)
        kita, minami = mgr.xvnc.get("p.kita"), mgr.xvnc.get("p.minami")
        assert kita is not None and minami is not None
        script = f"/usr/bin/python3 -c '{PROBE}' {{}}"

        async def probe(desktop: XvncDesktop, port: int) -> str:
            done = await asyncio.to_thread(in_session, desktop, script.format(port))
            return done.stdout.strip()

        assert await probe(kita, allowed.port) == "school:ping"
        assert (await probe(kita, other.port)).startswith("blocked")
        assert await probe(minami, other.port) == "school:ping"
        assert (await probe(minami, allowed.port)).startswith("blocked")
        off = await asyncio.to_thread(in_session, kita, "lp /etc/hostname")
        on = await asyncio.to_thread(in_session, minami, "lp /etc/hostname")
        assert lockdown.PRINTING_OFF in off.stderr
        assert lockdown.PRINTING_OFF not in on.stderr, on.stderr  # CUPS's own answer
        # Idle stop per policy: minami's desktop goes after 1 s unattached, kita's (15 min)
        # stays.
        # While both are attached the reaper reads nobody's policy (a store query each).
        lookups.clear()
        assert await mgr.reap_idle(time.monotonic() + 5) == [] and lookups == []
        mgr.detach("p.kita")
        mgr.detach("p.minami")
        assert await mgr.reap_idle(time.monotonic() + 5) == ["p.minami"]
        assert mgr.xvnc.get("p.kita") is not None and mgr.xvnc.get("p.minami") is None
    finally:
        await mgr.shutdown()


# ---------------------------------------------------------------- fallback quota


@pytest.mark.slow
@needs_root
async def test_fallback_quota_caps_files_and_freezes_the_home(workspace_data_dir: Path) -> None:
    mgr = WorkspaceManager(
        workspace_data_dir,
        session_command=SESSION,
        geometry="800x600",
        **sealed(workspace_data_dir),
        input_method=False,
        display_base=800,
        home_quota_bytes=4 * MiB,
        quota_backend="watch",
    )
    try:
        await mgr.attach("m.ito")
        desktop = mgr.xvnc.get("m.ito")
        assert desktop is not None and not os.path.ismount(desktop.spec.home)
        huge = await asyncio.to_thread(
            in_session, desktop, "dd if=/dev/zero of=huge bs=1M count=8 2>&1"
        )
        # RLIMIT_FSIZE: SIGXFSZ kills the writer (the shell reports it), or EFBIG if ignored.
        assert huge.returncode != 0
        assert "File size limit exceeded" in huge.stdout or "File too large" in huge.stdout
        await asyncio.to_thread(
            in_session,
            desktop,
            "dd if=/dev/zero of=a bs=1M count=3; dd if=/dev/zero of=b bs=1M count=3",
        )
        deadline = time.monotonic() + 10
        while True:
            probe = await asyncio.to_thread(in_session, desktop, "echo more > c 2>&1")
            if probe.returncode != 0:
                break
            assert time.monotonic() < deadline, "the home was never frozen"
            await asyncio.sleep(0.2)
        undo = await asyncio.to_thread(in_session, desktop, "chmod u+w . 2>&1")
        assert undo.returncode != 0  # root owns it now: the teacher cannot undo the freeze
        home = desktop.spec.home
        await mgr.stop("m.ito")
        # The home reached the sandbox through a bind mount on the same filesystem: the stop
        # removed the desktop's runtime dir without ever emptying the home through it.
        assert (home / "a").stat().st_size == 3 * MiB and (home / "b").exists()
        assert not desktop.runtime_dir.exists()
        await mgr.attach("m.ito")  # next start hands the home back so files can be deleted
        again = mgr.xvnc.get("m.ito")
        assert again is not None
        cleanup = await asyncio.to_thread(in_session, again, "rm -f a b huge c && echo ok")
        assert cleanup.stdout.strip() == "ok", cleanup.stderr
    finally:
        await mgr.shutdown()
