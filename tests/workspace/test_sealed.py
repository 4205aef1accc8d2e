"""Two teachers' sealed desktops at once: everything run inside A's desktop (as A, in A's
namespaces) tries each attack of issue 9 on B's desktop, on the gateway and on the network."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.store.sqlite import SqliteStore
from gateway.workspace import WorkspaceManager
from gateway.workspace.desktop import XvncDesktop
from gateway.workspace.uids import NOBODY
from tests.fixtures.workspace import AS_ROOT, in_desktop, needs_sandbox, random_uid_range

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not AS_ROOT, reason="per-teacher accounts need the gateway to be root"),
    needs_sandbox,
]

SESSION = ["sh", "-c", "openbox & exec xterm"]


class Listener:
    """A TCP listener on the host's loopback that records every byte it is sent."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.connections = 0
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> Listener:
        async def take(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                async with asyncio.timeout(5):
                    while data := await reader.read(4096):
                        self.received += data
            except TimeoutError:
                pass
            writer.close()

        self.server = await asyncio.start_server(take, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="staffroom-sealed-test-"))
    path.chmod(0o711)
    yield path
    from tests.fixtures.workspace import unmount_under

    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def listeners() -> AsyncIterator[tuple[Listener, Listener]]:
    outside, allowed = await Listener().start(), await Listener().start()
    yield outside, allowed
    await outside.close()
    await allowed.close()


@pytest.fixture(scope="module")
def uid_range() -> str:
    return random_uid_range()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["auto", "root"])
async def manager(
    request: pytest.FixtureRequest, data_dir: Path, listeners: tuple[Listener, Listener],
    uid_range: str,
) -> AsyncIterator[WorkspaceManager]:
    """Rooms as the kernel allows ("auto": bwrap as the teacher, in a user namespace), and as a
    gateway in a chroot must make them ("root": bwrap as root, the room drops to the teacher)."""
    mgr = WorkspaceManager(
        data_dir, session_command=SESSION, geometry="800x600", input_method=False,
        display_base=820, desktop_uids=uid_range, uid_store=SqliteStore(data_dir / "state.db"),
        allowed_hosts=[f"127.0.0.1:{listeners[1].port}"], home_quota_bytes=16 << 20,
        sandbox_mode=request.param,
    )  # fmt: skip
    yield mgr
    await mgr.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def desktops(manager: WorkspaceManager) -> tuple[XvncDesktop, XvncDesktop]:
    await asyncio.gather(manager.attach("a.teacher"), manager.attach("b.teacher"))
    a, b = manager.xvnc.get("a.teacher"), manager.xvnc.get("b.teacher")
    assert a is not None and b is not None
    await asyncio.gather(settled(a), settled(b))
    # B keeps a secret at home and in its /tmp.
    done = in_desktop(b, "echo b-grades > grades.txt && echo b-tmp > /tmp/b-secret && echo ok")
    assert done.stdout.strip() == "ok", done.stderr
    return a, b


async def settled(desktop: XvncDesktop, quiet: float = 1.5, timeout: float = 20) -> None:
    """Wait until the desktop's processes stop coming and going: openbox's start runs helpers
    (xdg-autostart) that exit again, and the process checks below compare two views of the
    rooms taken moments apart."""
    assert desktop.server is not None and desktop.session is not None
    last: set[int] = set()
    since = end = time.monotonic()
    end += timeout
    while time.monotonic() < end:
        now = set(desktop.server.members() + desktop.session.members())
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the desktop's processes never settled: {sorted(last)}")


def uid_of(pid: int) -> int:
    """The real uid of a host pid, read from the host's side (/proc/PID/status Uid:)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            real, effective, saved, fs = (int(x) for x in line.split()[1:])
            assert real == effective == saved == fs
            return real
    raise AssertionError(f"no Uid: line for {pid}")


def umask_of(pid: int) -> int:
    """The file mode mask of a host pid (/proc/PID/status Umask:)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError(f"no Umask: line for {pid}")


async def test_each_teacher_has_an_own_uid_seen_from_the_host(
    desktops: tuple[XvncDesktop, XvncDesktop]
) -> None:
    a, b = desktops
    uids = []
    for desktop in (a, b):
        assert desktop.server is not None and desktop.session is not None
        inits = {desktop.server.init_pid, desktop.session.init_pid}
        pids = [pid for pid in desktop.server.members() + desktop.session.members()
                if pid not in inits]
        assert len(pids) >= 3  # Xvnc, the session's processes
        seen = {uid_of(pid) for pid in pids}
        assert seen == {desktop.spec.account.uid}, seen
        # Everything in the rooms starts with umask 077 (set before bwrap: sandbox.umask_argv),
        # so what a teacher's apps create is theirs alone.
        masks = {pid: umask_of(pid) for pid in pids}
        assert set(masks.values()) == {0o077}, masks
        for init in inits:  # bwrap's reaper: the teacher (user namespace) or root without caps
            assert init is not None
            assert uid_of(init) in (desktop.spec.account.uid, 0)
            caps = Path(f"/proc/{init}/status").read_text().split("CapEff:")[1].split()[0]
            if uid_of(init) == 0:
                assert int(caps, 16) == 0, caps
        uids.append(desktop.spec.account.uid)
    assert uids[0] != uids[1]
    assert not {0, NOBODY} & set(uids)
    status = in_desktop(a, "grep -E '^(NoNewPrivs|CapEff)' /proc/self/status; id -u")
    assert status.stdout.split() == ["CapEff:", "0000000000000000", "NoNewPrivs:", "1",
                                     str(uids[0])], status.stdout  # fmt: skip
    # A setuid-root program does not elevate (no_new_privs; and root is not mapped at all).
    assert os.stat("/usr/bin/mount").st_mode & 0o4000
    mount = in_desktop(a, "/usr/bin/mount -t tmpfs none /tmp 2>&1; echo rc=$?")
    assert "rc=0" not in mount.stdout and "superuser" in mount.stdout, mount.stdout


async def test_a_cannot_list_or_read_bs_home_or_the_data_dir(
    desktops: tuple[XvncDesktop, XvncDesktop], data_dir: Path
) -> None:
    a, b = desktops
    assert (b.spec.home / "grades.txt").read_text() == "b-grades\n"
    script = (f"ls /home; ls {b.spec.home} 2>&1; cat {b.spec.home}/grades.txt 2>&1; "
              f"cat /home/b.teacher/grades.txt 2>&1; ls {data_dir} 2>&1; "
              f"cat {data_dir}/state.db 2>&1; cat /tmp/b-secret 2>&1; echo end")  # fmt: skip
    seen = in_desktop(a, script)
    assert "b-grades" not in seen.stdout and "b-tmp" not in seen.stdout
    assert seen.stdout.splitlines()[0] == "a.teacher"  # only A's own home is there
    assert seen.stdout.count("No such file or directory") == 6, seen.stdout
    # Only A's own home is writable: the system is read-only, and so is every other place.
    writes = in_desktop(a, "for d in /usr /etc /home /; do touch $d/x 2>/dev/null && echo $d; "
                           "done; touch ~/mine && echo home")  # fmt: skip
    assert writes.stdout.split() == ["home"], writes.stdout


async def test_a_sees_only_its_own_processes(desktops: tuple[XvncDesktop, XvncDesktop]) -> None:
    a, b = desktops
    assert b.xvnc_pid is not None and a.session is not None
    seen = in_desktop(a, "for p in /proc/[0-9]*; do cat $p/comm; done")
    names = set(seen.stdout.split())
    assert "xterm" in names and "openbox" in names
    assert "Xvnc" not in names  # not even A's own Xvnc: it lives in the other room
    seen_pids = {int(p) for p in in_desktop(a, "ls /proc").stdout.split() if p.isdigit()}
    inner = set()  # the room's processes as numbered inside it (last NSpid field)
    for pid in a.session.members():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                inner.add(int(line.split()[-1]))
    assert inner <= seen_pids and len(seen_pids - inner) <= 2  # + the probe's sh and ls


async def test_a_cannot_reach_bs_secrets_display_or_rfb_socket(
    desktops: tuple[XvncDesktop, XvncDesktop]
) -> None:
    a, b = desktops
    paths = [b.runtime_dir / "session" / "Xauthority", b.rfbauth, b.rfb_socket, b.runtime_dir]
    seen = in_desktop(a, "; ".join(f"ls -d {p} 2>&1" for p in paths))
    assert seen.stdout.count("No such file or directory") == len(paths), seen.stdout
    # Even holding B's cookie (copied in by the test, the worst case), B's display is not there:
    # its socket is in B's room and its abstract socket in B's network namespace.
    cookie = (b.runtime_dir / "session" / "Xauthority").read_bytes()
    stolen = a.spec.home / "stolen-cookie"
    stolen.write_bytes(cookie)
    os.chown(stolen, *a.spec.account.ids)
    env = {**a.session_env(), "DISPLAY": f":{b.spec.display}",
           "XAUTHORITY": f"{a.spec.inside_home}/stolen-cookie"}  # fmt: skip
    x = in_desktop(a, "xdpyinfo >/dev/null 2>&1 && echo reached || echo refused", env=env)
    assert x.stdout.strip() == "refused"
    rfb = in_desktop(a, f"""python3 -c '
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("{b.rfb_socket}"); print("connected")
except OSError as e:
    print("refused", e.errno)'""")
    assert rfb.stdout.startswith("refused"), rfb.stdout
    # A's own display works, with A's own cookie.
    own = in_desktop(a, "xdpyinfo >/dev/null && echo own")
    assert own.stdout.strip() == "own", own.stderr


async def test_a_cannot_kill_bs_xvnc(desktops: tuple[XvncDesktop, XvncDesktop]) -> None:
    a, b = desktops
    pid = b.xvnc_pid
    assert pid is not None
    done = in_desktop(a, f"kill -9 {pid} 2>&1; echo done")
    assert "No such process" in done.stdout and "done" in done.stdout
    await asyncio.sleep(0.2)
    assert b.xvnc_pid == pid and b.alive


async def test_reverse_connection_reaches_only_allowed_relays(
    manager: WorkspaceManager, listeners: tuple[Listener, Listener]
) -> None:
    """`vncconfig -connect` makes Xvnc dial out; from inside the desktop's namespace only the
    allow-listed relay answers. A listener elsewhere on the host gets nothing at all."""
    outside, allowed = listeners
    await manager.attach("c.teacher")
    c = manager.xvnc.get("c.teacher")
    assert c is not None
    for target in (outside, allowed):
        done = in_desktop(c, f"/usr/bin/vncconfig -connect 127.0.0.1:{target.port}; echo rc=$?")
        assert "rc=0" in done.stdout, done.stdout
    deadline = time.monotonic() + 5
    while not allowed.received.startswith(b"RFB ") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert allowed.received.startswith(b"RFB 003.008"), "the positive control saw no RFB"
    assert outside.connections == 0 and outside.received == b""
    await manager.stop("c.teacher")


async def test_nothing_outlives_a_stopped_desktop(
    manager: WorkspaceManager, desktops: tuple[XvncDesktop, XvncDesktop], uid_range: str,
    data_dir: Path,
) -> None:
    a, b = desktops
    assert a.session is not None
    in_desktop(a, "setsid env -i sleep 777 </dev/null >/dev/null 2>&1 &")
    deadline = time.monotonic() + 5
    while not (escaped := [pid for pid in a.session.members()
                           if Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00777\x00"]):
        assert time.monotonic() < deadline, "the escapee never started"
        await asyncio.sleep(0.05)
    uid = a.spec.account.uid
    await manager.stop("a.teacher")
    assert not Path(f"/proc/{escaped[0]}").exists() or \
        "Z" in Path(f"/proc/{escaped[0]}/stat").read_text().rpartition(")")[2].split()[0]
    assert a.session.members() == [] and a.server is not None and a.server.members() == []
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit():
            try:
                stat = (pid_dir / "stat").read_text()
                if stat.rpartition(")")[2].split()[0] == "Z":
                    continue  # dead, waiting for the host's init to reap it
                assert uid_of(int(pid_dir.name)) != uid, stat
            except OSError:
                continue
    assert b.alive  # B's desktop is untouched
    # The uid is A's for good: the next desktop, and another gateway on the same state DB.
    await manager.attach("a.teacher")
    again = manager.xvnc.get("a.teacher")
    assert again is not None and again.spec.account.uid == uid
    store = SqliteStore(data_dir / "state.db")
    assert store.desktop_uid("a.teacher") == uid
    store.close()
