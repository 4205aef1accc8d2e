"""A sealed room per desktop: bubblewrap (bwrap) run as the teacher's own uid, never as root.

Attacker-controlled here: everything the teacher runs inside the room. Limits: own user, mount,
PID, IPC and UTS namespaces (plus the desktop's network namespace, entered before bwrap); system
directories read-only, only the teacher's home writable, DATA_DIR and other homes not mounted;
no new privileges; the room's PID 1 dies with its last process and takes every process with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gateway.workspace.base import InvalidAssignment

log = logging.getLogger(__name__)

BWRAP = "bwrap"
PROBE_TIMEOUT = 10.0
INFO_TIMEOUT = 5.0  # seconds bwrap gets to report its PID 1
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# /var holds nothing a desktop needs but fonts' caches; the rest of it (logs, spools) stays out.
_VAR_KEEP = ("/var/cache/fontconfig", "/var/lib/dbus")
_PROC = Path("/proc")
SandboxMode = Literal["user", "root"]
TMPFS_SIZE = 256 * 1024 * 1024  # each of /tmp, /run, /var, /dev/shm: RAM the room may fill


@dataclass(frozen=True, slots=True)
class Bind:
    """A host path shown at ``target`` inside the room (read-only unless ``writable``)."""

    source: Path
    target: str
    writable: bool = False


@dataclass(frozen=True, slots=True)
class Room:
    """What one sandbox shows: system dirs read-only plus these binds, files over /etc."""

    binds: tuple[Bind, ...] = ()
    chdir: str = "/"
    hostname: str = "staffroom"
    etc_chromium: Path | None = None  # replaces /etc/chromium (the managed policy inside it)


def room_argv(room: Room, command: Sequence[str], info_fd: int | None = None,
              mode: SandboxMode = "user", *, outlive_parent: bool = False) -> list[str]:
    """bwrap's command line (pure: reads only which top-level dirs are symlinks on the host).

    ``outlive_parent``: a desktop's rooms must survive the gateway (a crash or a restart does
    not end them), so they get no parent-death signal; short-lived probes keep it.

    ``mode="user"``: bwrap runs as the teacher and makes a user namespace. ``mode="root"`` (a
    chroot, where the kernel refuses user namespaces): bwrap runs as root, keeps only
    CAP_SETUID/CAP_SETGID for ``command``, which must drop to the teacher (`drop_argv`).
    """
    owner = ["--unshare-user"] if mode == "user" else [
        "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    argv = [
        BWRAP, *owner,
        "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try",
        *(() if outlive_parent else ("--die-with-parent",)),
        "--new-session",  # no TIOCSTI into a terminal outside
        "--hostname", room.hostname,
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    for name in _ROOT_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    argv += ["--ro-bind", "/etc", "/etc"]
    if room.etc_chromium is not None and Path("/etc/chromium").is_dir():
        argv += ["--ro-bind", str(room.etc_chromium), "/etc/chromium"]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # Sticky and world-writable like a normal /tmp: in mode "root" the tmpfs belongs to root.
    for tmp, perms in (("/dev/shm", "1777"), ("/tmp", "1777"), ("/run", "0755"),
                       ("/var", "0755")):
        argv += ["--perms", perms, "--size", str(TMPFS_SIZE), "--tmpfs", tmp]
    argv += ["--perms", "1777", "--dir", "/var/tmp", "--symlink", "../run", "/var/run",
             "--dir", "/home"]
    for keep in _VAR_KEEP:
        argv += ["--ro-bind-try", keep, keep]
    # Parents of mount points bwrap would create 0700 when it runs as root (mode "root").
    parents = sorted({str(Path(b.target).parent) for b in room.binds} - {"/", "/etc", "/usr"})
    for parent in parents:
        if parent.startswith(("/run/", "/home/", "/tmp/", "/var/")):
            argv += ["--perms", "0755", "--dir", parent]
    for bind in room.binds:
        argv += ["--bind" if bind.writable else "--ro-bind", str(bind.source), bind.target]
    argv += ["--remount-ro", "/", "--chdir", room.chdir]  # the room's own root, /home too
    if info_fd is not None:
        argv += ["--info-fd", str(info_fd)]
    argv += ["--", *command]
    return argv


def drop_argv(uid: int, gid: int, command: Sequence[str]) -> list[str]:
    """``command`` as uid/gid with no supplementary groups and no way back up (no_new_privs).

    In mode "user" the drop happens *before* bwrap: bwrap then makes its namespaces as that
    account, so the teacher is uid N on the host too (`bwrap --uid N` as root would map N onto
    root). In mode "root" it is the room's first program.
    """
    return [
        "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
        "--no-new-privs", "--inh-caps=-all", "--", *command,
    ]  # fmt: skip


@dataclass(slots=True, eq=False)
class Sandbox:
    """A started room: the outer bwrap process and the room's PID 1 (a host pid).

    ``proc`` is None for a room re-adopted from the desktops registry (started by a gateway
    process that has since died): then PID 1 with its start time is all there is to watch.
    """

    proc: asyncio.subprocess.Process | None
    mode: SandboxMode = "user"
    init_pid: int | None = None
    pid_ns: str | None = None  # "pid:[inode]" of the room, to find its members from the host
    info: dict[str, object] = field(default_factory=dict)
    init_start: int | None = None  # PID 1's start time (clock ticks since boot)

    @property
    def running(self) -> bool:
        if self.proc is not None:
            return self.proc.returncode is None
        return self.init_pid is not None and self.init_start is not None \
            and start_time(self.init_pid) == self.init_start

    def members(self) -> list[int]:
        """Host pids of every live process in the room's PID namespace."""
        return ns_members(self.pid_ns) if self.pid_ns else []

    async def kill(self, grace: float) -> None:
        """SIGTERM everything inside, then SIGKILL the room's PID 1: the kernel kills the rest."""
        members = await asyncio.to_thread(self.members)
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while members and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            members = await asyncio.to_thread(self.members)
            if self.init_pid is not None and members == [self.init_pid]:
                break  # only bwrap's reaper is left
        if self.init_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.init_pid, signal.SIGKILL)
        # The outer bwrap reaps the room's PID 1 and exits; killed first, it would leave PID 1
        # a zombie for the host's init to reap.
        if self.proc is not None:
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        # PID 1's death makes the kernel SIGKILL the namespace; wait until it is empty.
        deadline = time.monotonic() + grace
        while await asyncio.to_thread(self.members) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks after boot), None if no such live process.

    A pid with the recorded start time is the same process: a reused pid starts later.
    """
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # fields after "(comm)" start at field 3: 22 - 3 = 19


def adopt(pid: int, started: int, mode: SandboxMode) -> Sandbox | None:
    """A room some earlier gateway started, if its PID 1 still runs (same start time) and is
    bubblewrap's reaper (a row naming any other process is not a room)."""
    if start_time(pid) != started:
        return None
    try:
        if (_PROC / str(pid) / "comm").read_text().strip() != BWRAP:
            return None
    except OSError:
        return None
    try:
        pid_ns = os.readlink(_PROC / str(pid) / "ns" / "pid")
    except OSError:
        return None
    return Sandbox(None, mode, init_pid=pid, pid_ns=pid_ns, init_start=started)


def ns_members(pid_ns: str) -> list[int]:
    """Live host pids whose PID namespace is ``pid_ns`` (zombies excluded)."""
    found = []
    for pid_dir in _PROC.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            if os.readlink(pid_dir / "ns" / "pid") != pid_ns:
                continue
            state = (pid_dir / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(pid_dir.name))
    return found


def umask_argv(umask: int, argv: Sequence[str]) -> list[str]:
    """``argv`` run with the file mode mask ``umask``: /bin/sh sets it and execs ``argv`` (so
    the PID, the descriptors passed and the environment stay those of ``argv``)."""
    if not 0 <= umask <= 0o777:
        raise ValueError(f"umask {umask:o} is not a file mode mask")
    return ["/bin/sh", "-c", f'umask {umask:03o} && exec "$@"', "staffroom-umask", *argv]


async def start(argv_before: Sequence[str], room: Room, command: Sequence[str],
                mode: SandboxMode = "user", umask: int | None = None,
                **popen: object) -> Sandbox:
    """Run ``argv_before + bwrap … -- command``; return once bwrap reported its PID 1.

    ``argv_before`` enters the network namespace and, in mode "user", drops to the teacher (see
    `drop_argv`); in mode "root", ``command`` itself must drop. ``umask``: the file mode mask
    everything in the room starts with, set by a shell that then execs the rest (the same
    process), not by a subprocess keyword uvloop's loop does not take (gateway.event_loop).
    Raises OSError if bwrap did not come up (its log says why).
    """
    read_fd, write_fd = os.pipe()
    try:
        argv = [*argv_before, *room_argv(room, command, write_fd, mode, outlive_parent=True)]
        if umask is not None:
            argv = umask_argv(umask, argv)
        proc = await asyncio.create_subprocess_exec(
            *argv, pass_fds=(write_fd,), **popen  # type: ignore[arg-type]
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    sandbox = Sandbox(proc, mode)
    try:
        raw = await asyncio.wait_for(asyncio.to_thread(_read_all, read_fd), INFO_TIMEOUT)
    except TimeoutError:
        raw = b""
    finally:
        os.close(read_fd)
    try:
        sandbox.info = json.loads(raw) if raw else {}
    except ValueError:
        sandbox.info = {}
    child = sandbox.info.get("child-pid")
    if not isinstance(child, int):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise OSError(0, "bubblewrap did not start the room")
    sandbox.init_pid = child
    sandbox.init_start = start_time(child)
    with contextlib.suppress(OSError):
        sandbox.pid_ns = os.readlink(_PROC / str(child) / "ns" / "pid")
    return sandbox


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def enter_argv(sandbox: Sandbox, uid: int, gid: int, command: Sequence[str]) -> list[str]:
    """Run ``command`` inside a running room as its teacher (admin tools and tests).

    nsenter joins the room's user, mount, PID, network, IPC and UTS namespaces and its root,
    then becomes uid/gid (entering a user namespace grants capabilities only inside it, and the
    switch to the teacher drops them); setpriv forbids regaining any. The command starts in
    the room's working directory (the teacher's home).
    """
    if sandbox.init_pid is None:
        raise OSError(0, "the room is not running")
    userns = ["-U"] if sandbox.mode == "user" else []
    return [
        "setpriv", "--clear-groups", "--",  # before entering: the room forbids setgroups
        "nsenter", "-t", str(sandbox.init_pid), *userns, "-m", "-p", "-n", "-i", "-u",
        "-r", "-w", "-S", str(uid), "-G", str(gid),
        "setpriv", "--no-new-privs", "--inh-caps=-all", "--", *command,
    ]  # fmt: skip


ETC_REPLACED = ("/etc/hosts", "/etc/passwd", "/etc/group")  # by each room's own copy


def check_available(uid: int, gid: int, as_root: bool,
                    want: Literal["auto", "user", "root"] = "auto") -> SandboxMode:
    """The way bwrap can build rooms for this account here, or refuse desktops (fail closed).

    "user" (bwrap run as the teacher makes a user namespace) is the rule. A gateway running as
    root inside a chroot cannot have that (the kernel refuses CLONE_NEWUSER to a chrooted
    process); there bwrap runs as root and the room's first program drops to the teacher
    ("root"). The usual reasons for no way at all: bubblewrap is not installed, or user
    namespaces are off (sysctl user.max_user_namespaces=0) and the gateway is not root.
    """
    for name in ETC_REPLACED:
        if not Path(name).is_file():
            # bwrap binds each room's own copy over the host's file and cannot create one
            # on the read-only /etc (a bare debootstrap root has no /etc/hosts).
            raise InvalidAssignment(
                f"Desktops cannot be sealed on this server: it has no {name}, which each "
                f"desktop's own copy replaces; create it (for /etc/hosts: "
                f"'127.0.0.1 localhost') and try again.")
    reason = ""
    for mode in (("user", "root") if want == "auto" else (want,)):
        if mode == "root" and not as_root:
            continue
        reason = _probe(uid, gid, as_root, mode)  # type: ignore[arg-type]
        if not reason:
            if mode == "root":
                log.warning("no user namespaces here (a chroot?): bubblewrap runs as root and "
                            "each room drops to its teacher's uid itself")
            return mode  # type: ignore[return-value]
    raise InvalidAssignment(
        f"Desktops cannot be sealed on this server: bubblewrap cannot make a sandbox "
        f"({reason or 'not root'}); the kernel must allow user namespaces, or the gateway "
        "must run as root."
    )


def _probe(uid: int, gid: int, as_root: bool, mode: SandboxMode) -> str:
    """Run a room around /usr/bin/true the way desktops will; "" if it worked, else why not."""
    if mode == "user":
        probe = room_argv(Room(), ["/usr/bin/true"])
        argv = drop_argv(uid, gid, probe) if as_root else probe
    else:
        argv = room_argv(Room(), drop_argv(uid, gid, ["/usr/bin/true"]), mode="root")
    try:
        done = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT, check=False,
                              cwd="/")  # fmt: skip
    except FileNotFoundError:
        raise InvalidAssignment(
            "Desktops cannot be sealed: bubblewrap (bwrap) is not installed on the gateway "
            "server; install the Debian package bubblewrap."
        ) from None
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)[:200]
    if done.returncode == 0:
        return ""
    why = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return why[-1][:200] if why else f"exit {done.returncode}"
