"""One per-user TigerVNC desktop in two sealed rooms: Xvnc in one, the teacher's session next.

Attacker-controlled here: what the teacher does inside the desktop. Limits: both rooms run as the
teacher's own uid in the desktop's network namespace; Xvnc speaks RFB only on a Unix socket in a
directory the session room cannot see (no TCP listener), so its password file and RFB socket are
out of the session's reach; the session gets a fresh environment; on stop each room's PID 1 is
killed, which ends every process in it, setsid escapees included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from gateway.workspace import browser, credentials, ime, procs, quota, sandbox
from gateway.workspace.base import Endpoint, InvalidAssignment, WorkspaceStartFailed
from gateway.workspace.confinement import Confinement, HomeMode, Limits, prepare_home
from gateway.workspace.lockdown import SessionLockdown
from gateway.workspace.sandbox import Bind, Room, Sandbox

log = logging.getLogger(__name__)

GRACE = 2.0  # seconds a process gets between SIGTERM and SIGKILL
#: Xvnc's frame clock. TigerVNC sends the first update after a change only half a frame later
#: (8 ms at its default of 60), most of a typed key's way to the screen. The gateway paces big
#: frames itself (policy display.max_frame_rate), so a faster clock shortens a key's wait
#: without more frames for scrolling. Measured: docs/PERFORMANCE.md part AP.
FRAME_RATE = 240
# Paths inside the rooms.
SERVER_DIR = "/run/staffroom"  # Xvnc's room: rfbauth, its cookie and the RFB socket
LOCKDOWN_DIR = "/run/staffroom"  # the session's room: wrappers, bus config, session scripts
X11_DIR = "/tmp/.X11-unix"
RFB_SOCKET = "rfb.sock"


@dataclass(frozen=True, slots=True)
class Account:
    """Who desktop processes run as; ``switch`` is False when that is the gateway's own uid."""

    name: str
    uid: int
    gid: int
    switch: bool

    @property
    def ids(self) -> tuple[int, int]:
        return self.uid, self.gid


@dataclass(frozen=True, slots=True)
class DesktopSpec:
    user_id: str
    display: int
    home: Path  # on the host: DATA_DIR/homes/<user> (the mounted image)
    account: Account
    session_command: tuple[str, ...]
    geometry: str
    locale: str
    clipboard: bool = False
    input_method: bool = True
    start_timeout: float = 10.0
    lockdown: SessionLockdown | None = None
    limits: Limits = field(default_factory=lambda: Limits(egress=None))
    home_url: str = ""
    sandbox_mode: sandbox.SandboxMode = "user"

    @property
    def inside_home(self) -> str:
        return f"/home/{self.user_id}"

    @property
    def inside_runtime(self) -> str:
        return f"/run/user/{self.account.uid}"


@dataclass(slots=True, eq=False)
class XvncDesktop:
    """A running desktop. Mutable runtime state; the password never appears in its repr."""

    spec: DesktopSpec
    password: str = field(repr=False)
    runtime_dir: Path  # on the host, root-owned 0711; per-room subdirectories owned by the uid
    marker: str = field(repr=False)
    started_at: float  # wall clock, for admin listings
    server: Sandbox | None = None  # Xvnc's room
    session: Sandbox | None = None  # the teacher's room
    confinement: Confinement | None = None
    stopped: bool = False

    @property
    def home_source(self) -> Path:
        """Where the session room's bwrap (as the teacher) finds the home: a bind mount of
        DATA_DIR/homes/<user> in the runtime dir, as DATA_DIR's parents may be closed to it."""
        return self.runtime_dir / "home" if self.spec.account.switch else self.spec.home

    @property
    def rfb_socket(self) -> Path:
        return self.runtime_dir / "server" / RFB_SOCKET

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("", 0, self.password, f":{self.spec.display}", path=str(self.rfb_socket))

    @property
    def alive(self) -> bool:
        """Both rooms run (a logout ends the session room: the next attach starts afresh)."""
        return (
            not self.stopped
            and self.server is not None
            and self.server.running
            and self.session is not None
            and self.session.running
        )

    @property
    def xvnc_pid(self) -> int | None:
        """Host pid of Xvnc (the server room's only process besides bwrap's PID 1)."""
        if self.server is None:
            return None
        others = [pid for pid in self.server.members() if pid != self.server.init_pid]
        return min(others) if others else None

    @property
    def rfbauth(self) -> Path:
        return self.runtime_dir / "server" / "rfbauth"

    @property
    def client_env(self) -> dict[str, str]:
        """What an X or D-Bus client inside the session room needs (tests, admin tools)."""
        runtime = self.spec.inside_runtime
        return {
            "DISPLAY": f":{self.spec.display}",
            "XAUTHORITY": f"{runtime}/Xauthority",
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={runtime}/bus",
        }

    def session_env(self) -> dict[str, str]:
        """A fresh environment: nothing of the gateway's (keys, tokens) leaks into the desktop."""
        spec = self.spec
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": spec.inside_home,
            "USER": spec.user_id,
            "LOGNAME": spec.user_id,
            "SHELL": "/bin/sh",
            "LANG": spec.locale,
            "XDG_RUNTIME_DIR": spec.inside_runtime,
            "XDG_SESSION_TYPE": "x11",
            "STAFFROOM_HOME_URL": spec.home_url or "about:blank",
            **self.client_env,
        }
        if spec.sandbox_mode == "root":
            # No user namespaces here (a chroot): Chromium's own sandbox cannot start either;
            # the desktop's room is then its only sandbox (docs/WORKSPACE.md, section 0).
            env["STAFFROOM_CHROMIUM_FLAGS"] = "--no-sandbox"
        if spec.input_method:
            env.update(ime.IME_ENV)
            env["STAFFROOM_FCITX"] = " ".join(ime.fcitx5_args(clipboard=spec.clipboard))
        if spec.lockdown is not None:
            inside = inside_lockdown(spec.lockdown)
            env.update(inside.env(Path(spec.inside_runtime)))
            env["STAFFROOM_BUS_CONFIG"] = str(inside.bus_config)
        name, _, value = self.marker.partition("=")
        env[name] = value
        return env

    def enter_argv(self, command: list[str]) -> list[str]:
        """``command`` inside the session room, as the teacher (for tests and admin tools)."""
        if self.session is None:
            raise OSError(0, "the desktop has no session")
        return sandbox.enter_argv(self.session, *self.spec.account.ids, command)

    async def stop(self) -> None:
        """End both rooms (every process in them), then the limits; remove the secrets."""
        if self.stopped:
            return
        self.stopped = True
        for room in (self.session, self.server):
            if room is not None:
                await room.kill(GRACE)
        await procs.kill_marked(self.marker.encode(), GRACE)  # belt and braces
        if self.home_source != self.spec.home and quota.mounted(self.home_source):
            try:
                await asyncio.to_thread(quota.unmount_home, self.home_source)
            except quota.QuotaUnavailable as exc:
                log.error("desktop :%d: cannot unmount its home's bind: %s", self.spec.display,
                          exc)  # fmt: skip
        if self.confinement is not None:
            await self.confinement.release()  # nothing runs any more: unmount, drop namespace
        await asyncio.to_thread(remove_runtime, self.runtime_dir)
        log.info("desktop :%d of user %s stopped", self.spec.display, self.spec.user_id)


def remove_runtime(runtime: Path) -> None:
    """Blocking: delete a desktop's runtime dir (its secrets) but never through ``home``: that is
    a bind of the teacher's home while mounted, so it is only ever rmdir()ed, never emptied."""
    with contextlib.suppress(FileNotFoundError):
        for entry in runtime.iterdir():
            if entry.name == "home":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
    try:
        with contextlib.suppress(FileNotFoundError):
            (runtime / "home").rmdir()
        runtime.rmdir()
    except OSError as exc:
        log.error("runtime dir %s left in place (%s): its home is still bound", runtime, exc)


def inside_lockdown(lockdown: SessionLockdown) -> SessionLockdown:
    """The lock-down files as the session room sees them (bound at LOCKDOWN_DIR)."""
    base = Path(LOCKDOWN_DIR)
    return replace(lockdown, base=base, bin_dir=base / lockdown.bin_dir.name,
                   bus_config=base / lockdown.bus_config.name,
                   config_dir=base / lockdown.config_dir.name)  # fmt: skip


def _private_dir(path: Path, owner: tuple[int, int] | None) -> Path:
    path.mkdir(mode=0o700)
    if owner is not None:
        os.chown(path, *owner)
    return path


def _etc_files(spec: DesktopSpec, etc: Path) -> None:
    """passwd and group with the teacher's account (/etc/hosts follows once names resolved)."""
    etc.mkdir(mode=0o755)
    (etc / "hosts").write_text(hosts_file({}))
    (etc / "hosts").chmod(0o644)
    passwd = Path("/etc/passwd").read_text()
    group = Path("/etc/group").read_text()
    uid, gid = spec.account.ids
    passwd += f"{spec.user_id}:x:{uid}:{gid}:Staffroom desktop:{spec.inside_home}:/bin/sh\n"
    group += f"{spec.user_id}:x:{gid}:\n"
    for name, text in (("passwd", passwd), ("group", group)):
        (etc / name).write_text(text)
        (etc / name).chmod(0o644)


def hosts_file(names: dict[str, set[str]]) -> str:
    """The room's /etc/hosts: localhost plus each allowed host name at its resolved addresses."""
    text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    for name in sorted(names):
        for address in sorted(names[name]):
            if address != name:
                text += f"{address}\t{name}\n"
    return text


def _write_hosts(desktop: XvncDesktop) -> None:
    confinement = desktop.confinement
    names: dict[str, set[str]] = {}
    for item in confinement.listeners if confinement is not None else ():
        names.setdefault(item.rule.host, set()).add(item.address)
    (desktop.runtime_dir / "etc" / "hosts").write_text(hosts_file(names))


def _prepare_files(spec: DesktopSpec, password: str, cookie: bytes) -> tuple[Path, HomeMode]:
    """Blocking part of a start (run in a thread): runtime dirs, secrets, HOME (maybe mounted)."""
    owner = spec.account.ids if spec.account.switch else None
    runtime = Path(tempfile.mkdtemp(prefix=f"staffroom-desktop{spec.display}-"))
    mode: HomeMode = "none"
    try:
        runtime.chmod(0o711)  # the rooms' bwrap (as the teacher) must reach its subdirectories
        server = _private_dir(runtime / "server", owner)
        session = _private_dir(runtime / "session", owner)
        _private_dir(runtime / "x11", owner)
        obfuscated = credentials.obfuscate_vnc_password(password)
        credentials.write_private(server / "rfbauth", obfuscated, owner=owner)
        entry = credentials.xauth_entry(spec.display, cookie)
        credentials.write_private(server / "Xauthority", entry, owner=owner)
        credentials.write_private(session / "Xauthority", entry, owner=owner)
        _etc_files(spec, runtime / "etc")
        policy = browser.managed_policy(spec.home_url, spec.limits.egress or (), spec.inside_home)
        browser.write_policy_dir(runtime / "chromium", policy)
        spec.home.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
        mode = prepare_home(spec.limits, spec.home, spec.account.ids, f"desktop :{spec.display}")
        if not spec.home.exists():
            spec.home.mkdir(mode=0o700)
            if owner is not None:
                os.chown(spec.home, *owner)
        if spec.input_method:
            ime.prepare_home(spec.home, owner)
        if owner is not None:
            quota.bind_home(spec.home, runtime / "home")
    except OSError:
        log.exception("desktop :%d: cannot prepare its files", spec.display)
        if mode == "image":
            with contextlib.suppress(OSError):
                quota.unmount_home(spec.home)
        remove_runtime(runtime)
        raise WorkspaceStartFailed() from None
    return runtime, mode


def xvnc_args(spec: DesktopSpec) -> list[str]:
    # Text into the desktop only when policy allows it (AcceptCutText). Text copied inside the
    # desktop always goes to the gateway (SendCutText), which is where policy is enforced and
    # every blocked attempt is audited; it never leaves the gateway unless policy allows.
    # The primary selection (every highlight) is never sent.
    cut = "1" if spec.clipboard else "0"
    return [
        "Xvnc", f":{spec.display}",
        # RFB only on a Unix socket the session room cannot see; no TCP listener at all.
        "-rfbport", "-1",
        "-rfbunixpath", f"{SERVER_DIR}/{RFB_SOCKET}", "-rfbunixmode", "0600",
        "-SecurityTypes", "VncAuth",
        "-rfbauth", f"{SERVER_DIR}/rfbauth",
        "-auth", f"{SERVER_DIR}/Xauthority",  # X access needs the cookie, not just the socket
        "-geometry", spec.geometry,
        "-depth", "24",
        "-nolisten", "tcp",
        "-AlwaysShared",
        f"-AcceptCutText={cut}", "-SendCutText=1", "-SendPrimary=0",
        # By default X clients (vncconfig -set …) may flip these at run time: allow none.
        "-AllowOverride=",
        "-FrameRate", str(FRAME_RATE),
        "-desktop", "Staffroom",
    ]  # fmt: skip


def server_room(desktop: XvncDesktop) -> Room:
    runtime = desktop.runtime_dir
    return Room(
        binds=(
            Bind(runtime / "server", SERVER_DIR, writable=True),
            Bind(runtime / "x11", X11_DIR, writable=True),
            Bind(runtime / "etc" / "passwd", "/etc/passwd"),
            Bind(runtime / "etc" / "group", "/etc/group"),
        ),
        chdir=SERVER_DIR,
        hostname="staffroom-display",
    )


def session_room(desktop: XvncDesktop) -> Room:
    spec, runtime = desktop.spec, desktop.runtime_dir
    binds = [
        Bind(desktop.home_source, spec.inside_home, writable=True),
        Bind(runtime / "session", spec.inside_runtime, writable=True),
        Bind(runtime / "x11", X11_DIR),
        Bind(runtime / "etc" / "hosts", "/etc/hosts"),
        Bind(runtime / "etc" / "passwd", "/etc/passwd"),
        Bind(runtime / "etc" / "group", "/etc/group"),
    ]
    if spec.lockdown is not None:
        binds.append(Bind(spec.lockdown.base, LOCKDOWN_DIR))
    return Room(binds=tuple(binds), chdir=spec.inside_home, hostname="staffroom-desktop",
                etc_chromium=runtime / "chromium")  # fmt: skip


def session_command(desktop: XvncDesktop) -> list[str]:
    """The session room's command: the lock-down's starter (bus, fcitx5) then the session."""
    spec = desktop.spec
    if spec.lockdown is None:
        return list(spec.session_command)
    return [f"{LOCKDOWN_DIR}/{spec.lockdown.starter.name}", *spec.session_command]


def _prefix(desktop: XvncDesktop, *, quota_cap: bool) -> list[str]:
    """Enter the network namespace, cap file sizes (fallback quota), drop to the teacher."""
    argv: list[str] = []
    confinement, account, limits = desktop.confinement, desktop.spec.account, desktop.spec.limits
    if confinement is not None and confinement.netns is not None:
        argv += confinement.netns.enter_prefix()
    if quota_cap and confinement is not None and confinement.home_mode == "watch" \
            and limits.home_quota is not None:  # fmt: skip
        argv += ["prlimit", f"--fsize={limits.home_quota}", "--"]
    if account.switch and desktop.spec.sandbox_mode == "user":
        argv += sandbox.drop_argv(account.uid, account.gid, [])  # ends in "--"
    return argv


async def _room(desktop: XvncDesktop, room: Room, command: list[str], log_file: IO[bytes],
                *, quota_cap: bool) -> Sandbox:  # fmt: skip
    spec = desktop.spec
    mode = spec.sandbox_mode
    if mode == "root":  # bwrap runs as root here: the room's first program drops to the teacher
        command = sandbox.drop_argv(spec.account.uid, spec.account.gid, command)
    return await sandbox.start(
        _prefix(desktop, quota_cap=quota_cap), room, command, mode,
        stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
        env=desktop.session_env(), cwd="/", umask=0o077, start_new_session=True,
    )  # fmt: skip


async def start_desktop(spec: DesktopSpec) -> XvncDesktop:
    """Start Xvnc and the session; raise WorkspaceStartFailed (and leave nothing) on failure."""
    password = credentials.new_vnc_password()
    runtime, home_mode = await asyncio.to_thread(
        _prepare_files, spec, password, secrets.token_bytes(16)
    )
    desktop = XvncDesktop(
        spec=spec,
        password=password,
        runtime_dir=runtime,
        marker=f"STAFFROOM_DESKTOP={secrets.token_hex(12)}",
        started_at=time.time(),
        confinement=Confinement(f"desktop :{spec.display}", spec.home, home_mode),
    )
    try:
        try:
            await desktop.confinement.start(spec.limits, spec.account.ids)  # type: ignore[union-attr]
        except (OSError, InvalidAssignment) as exc:
            _log_failure(desktop, f"its limits could not be set up: {exc}")
            raise WorkspaceStartFailed() from None
        await asyncio.to_thread(_write_hosts, desktop)
        await _launch(desktop)
    except BaseException:
        await asyncio.shield(desktop.stop())  # also when the attach is cancelled: no orphans
        raise
    return desktop


async def _launch(desktop: XvncDesktop) -> None:
    spec = desktop.spec
    deadline = time.monotonic() + spec.start_timeout
    with open(desktop.runtime_dir / "session.log", "ab", buffering=0) as log_file:
        try:
            desktop.server = await _room(desktop, server_room(desktop), xvnc_args(spec),
                                         log_file, quota_cap=False)  # fmt: skip
        except OSError as exc:
            _log_failure(desktop, f"Xvnc's sandbox did not start: {exc}")
            raise WorkspaceStartFailed() from None
        if await procs.wait_rfb_socket(desktop.rfb_socket, deadline, desktop.server.proc) is None:
            _log_failure(desktop, "Xvnc did not answer")
            raise WorkspaceStartFailed()
        try:
            desktop.session = await _room(desktop, session_room(desktop),
                                          session_command(desktop), log_file, quota_cap=True)
        except OSError as exc:
            _log_failure(desktop, f"the session's sandbox did not start: {exc}")
            raise WorkspaceStartFailed() from None
        if spec.lockdown is not None:  # the starter checks the command, then starts the bus
            bus = desktop.runtime_dir / "session" / "bus"
            if not await procs.wait_path(bus, deadline, desktop.session.proc):
                _log_failure(desktop, "the session did not start")
                raise WorkspaceStartFailed()
    log.info("desktop :%d started for user %s (uid %d)", spec.display, spec.user_id,
             spec.account.uid)  # fmt: skip


def _log_failure(desktop: XvncDesktop, why: str) -> None:
    try:
        tail = (desktop.runtime_dir / "session.log").read_bytes()[-2000:]
    except OSError:
        tail = b""
    log.warning(
        "desktop :%d for user %s: %s; log tail: %r",
        desktop.spec.display, desktop.spec.user_id, why, tail.decode("utf-8", "replace"),
    )  # fmt: skip
