"""One per-user TigerVNC desktop: Xvnc on a private display, a session bus, fcitx5, the session.

Attacker-controlled here: what the teacher does inside the desktop (their processes share its
uid): they cannot reach the gateway's environment (each child gets a fresh one), and on stop the
whole process group plus anything carrying the session marker (setsid escapees) is killed.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gateway.workspace import credentials, ime, procs, quota
from gateway.workspace.base import Endpoint, InvalidAssignment, WorkspaceStartFailed
from gateway.workspace.confinement import Confinement, HomeMode, Limits, prepare_home
from gateway.workspace.lockdown import SessionLockdown

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
GRACE = 2.0  # seconds a process gets between SIGTERM and SIGKILL
IME_READY_TIMEOUT = 3.0  # seconds fcitx5 gets to register its XIM server
LAUNCHERS = (b"nsenter", b"prlimit")  # exec() the real command; wait until they have
LAUNCH_TIMEOUT = 2.0


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

    def popen_kwargs(self) -> dict[str, Any]:
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


@dataclass(frozen=True, slots=True)
class DesktopSpec:
    user_id: str
    display: int
    port: int
    home: Path
    account: Account
    session_command: tuple[str, ...]
    geometry: str
    locale: str
    clipboard: bool = False
    input_method: bool = True
    start_timeout: float = 10.0
    lockdown: SessionLockdown | None = None
    limits: Limits = field(default_factory=lambda: Limits(egress=None))


@dataclass(slots=True, eq=False)
class XvncDesktop:
    """A running desktop. Mutable runtime state; the password never appears in its repr."""

    spec: DesktopSpec
    password: str = field(repr=False)
    runtime_dir: Path
    marker: str = field(repr=False)
    started_at: float  # wall clock, for admin listings
    xvnc: asyncio.subprocess.Process | None = None
    bus: asyncio.subprocess.Process | None = None
    session: asyncio.subprocess.Process | None = None
    children: list[asyncio.subprocess.Process] = field(default_factory=list)
    confinement: Confinement | None = None
    stopped: bool = False

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(LOOPBACK, self.spec.port, self.password, f":{self.spec.display}")

    @property
    def alive(self) -> bool:
        """Xvnc runs and the session command has not ended (a logout means start afresh)."""
        return (
            not self.stopped
            and self.xvnc is not None
            and self.xvnc.returncode is None
            and self.session is not None
            and self.session.returncode is None
        )

    @property
    def rfbauth(self) -> Path:
        return self.runtime_dir / "rfbauth"

    @property
    def client_env(self) -> dict[str, str]:
        """What an X or D-Bus client needs to talk to this desktop (tests, admin tools)."""
        return {
            "DISPLAY": f":{self.spec.display}",
            "XAUTHORITY": str(self.runtime_dir / "Xauthority"),
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={self.runtime_dir / 'bus'}",
        }

    def session_env(self) -> dict[str, str]:
        """A fresh environment: nothing of the gateway's (keys, tokens) leaks into the desktop."""
        spec = self.spec
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(spec.home),
            "USER": spec.account.name,
            "LOGNAME": spec.account.name,
            "SHELL": "/bin/sh",
            "LANG": spec.locale,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "XDG_SESSION_TYPE": "x11",
            **self.client_env,
        }
        if spec.input_method:
            env.update(ime.IME_ENV)
        if spec.lockdown is not None:
            env.update(spec.lockdown.env(self.runtime_dir))
        name, _, value = self.marker.partition("=")
        env[name] = value
        return env

    async def stop(self) -> None:
        """Kill the session's process group, setsid escapees, then Xvnc; remove secrets."""
        if self.stopped:
            return
        self.stopped = True
        if self.bus is not None and self.bus.returncode is None:
            # Only while its leader runs is the group id surely ours (ids are reused); if the
            # bus died, the marker sweep below finds the session's processes instead.
            await procs.kill_group(self.bus.pid, GRACE)
        escaped = await procs.kill_marked(self.marker.encode(), GRACE)
        if escaped:
            log.info("desktop :%d: killed %d escaped processes", self.spec.display, len(escaped))
        if self.xvnc is not None:
            await procs.stop_process(self.xvnc, GRACE)
        for proc in (self.bus, self.session, *self.children):
            if proc is not None:
                await procs.stop_process(proc, GRACE)
        await procs.kill_marked(self.marker.encode(), GRACE)
        if self.confinement is not None:
            await self.confinement.release()  # nothing runs any more: unmount, drop namespace
        await asyncio.to_thread(shutil.rmtree, self.runtime_dir, True)
        log.info("desktop :%d of user %s stopped", self.spec.display, self.spec.user_id)


def _prepare_files(spec: DesktopSpec, password: str, cookie: bytes) -> tuple[Path, HomeMode]:
    """Blocking part of a start (run in a thread): runtime dir, secrets, HOME (maybe mounted)."""
    owner = (spec.account.uid, spec.account.gid) if spec.account.switch else None
    runtime = Path(tempfile.mkdtemp(prefix=f"staffroom-x{spec.display}-"))  # 0700
    mode: HomeMode = "none"
    try:
        if owner is not None:
            os.chown(runtime, *owner)
        obfuscated = credentials.obfuscate_vnc_password(password)
        credentials.write_private(runtime / "rfbauth", obfuscated, owner=owner)
        entry = credentials.xauth_entry(spec.display, cookie)
        credentials.write_private(runtime / "Xauthority", entry, owner=owner)
        spec.home.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
        mode = prepare_home(spec.limits, spec.home, spec.account.ids, f"desktop :{spec.display}")
        if not spec.home.exists():
            spec.home.mkdir(mode=0o700)
            if owner is not None:
                os.chown(spec.home, *owner)
        if spec.input_method:
            ime.prepare_home(spec.home, owner)
    except OSError:
        log.exception("desktop :%d: cannot prepare its files", spec.display)
        if mode == "image":
            with contextlib.suppress(OSError):
                quota.unmount_home(spec.home)
        shutil.rmtree(runtime, ignore_errors=True)
        raise WorkspaceStartFailed() from None
    return runtime, mode


def xvnc_args(spec: DesktopSpec, runtime: Path) -> list[str]:
    # Text into the desktop only when policy allows it (AcceptCutText). Text copied inside the
    # desktop always goes to the gateway (SendCutText), which is where policy is enforced and
    # every blocked attempt is audited; it never leaves the gateway unless policy allows.
    # The primary selection (every highlight) is never sent.
    cut = "1" if spec.clipboard else "0"
    # No -localhost: in TigerVNC 1.12 it overrides -interface and also binds [::1]; with only
    # -interface 127.0.0.1 the single listener is exactly the loopback port we probed as free.
    return [
        "Xvnc", f":{spec.display}",
        "-rfbport", str(spec.port),
        "-interface", LOOPBACK,
        "-SecurityTypes", "VncAuth",
        "-rfbauth", str(runtime / "rfbauth"),
        "-auth", str(runtime / "Xauthority"),  # X access needs the cookie, not just the socket
        "-geometry", spec.geometry,
        "-depth", "24",
        "-nolisten", "tcp",
        "-AlwaysShared",
        f"-AcceptCutText={cut}", "-SendCutText=1", "-SendPrimary=0",
        # By default X clients (vncconfig -set …) may flip these at run time: allow none.
        "-AllowOverride=",
        "-desktop", "Staffroom",
    ]  # fmt: skip


async def _spawn(
    desktop: XvncDesktop,
    argv: list[str],
    log_file: IO[bytes],
    *,
    confined: bool = True,
    **kwargs: Any,
) -> asyncio.subprocess.Process:
    """Start one desktop process; ``confined`` ones (all but Xvnc) get the desktop's limits."""
    who = desktop.spec.account.popen_kwargs()
    if confined and desktop.confinement is not None:
        account, limits = desktop.spec.account, desktop.spec.limits
        argv = desktop.confinement.argv(argv, account.uid, account.gid, limits)
        if desktop.confinement.netns is not None:
            who = {}  # nsenter needs root to enter, then switches to the account itself
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log_file,
        stderr=log_file,
        env=desktop.session_env(),
        cwd=desktop.spec.home,
        umask=0o077,
        **who,
        **kwargs,
    )
    if argv[0].encode() in LAUNCHERS:
        await procs.wait_exec_past(proc, LAUNCHERS, LAUNCH_TIMEOUT)
    return proc


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
        await _launch(desktop)
    except BaseException:
        await asyncio.shield(desktop.stop())  # also when the attach is cancelled: no orphans
        raise
    return desktop


async def _launch(desktop: XvncDesktop) -> None:
    spec = desktop.spec
    deadline = time.monotonic() + spec.start_timeout
    runtime = desktop.runtime_dir
    with open(runtime / "session.log", "ab", buffering=0) as log_file:
        desktop.xvnc = await _spawn(
            desktop, xvnc_args(spec, runtime), log_file, confined=False, start_new_session=True
        )
        if await procs.wait_rfb(LOOPBACK, spec.port, deadline, desktop.xvnc) is None:
            _log_failure(desktop, "Xvnc did not answer")
            raise WorkspaceStartFailed()
        bus_config = (f"--config-file={spec.lockdown.bus_config}" if spec.lockdown
                      else "--session")  # fmt: skip
        bus_argv = ["dbus-daemon", bus_config, "--nofork", "--nopidfile",
                    f"--address=unix:path={runtime / 'bus'}"]  # fmt: skip
        # The bus leads the session's process group; fcitx5 and the session command join it
        # (a group in our own session: setpgid() cannot join one across sessions).
        desktop.bus = await _spawn(desktop, bus_argv, log_file, process_group=0)
        if not await procs.wait_path(runtime / "bus", deadline, desktop.bus):
            _log_failure(desktop, "the session bus did not start")
            raise WorkspaceStartFailed()
        group = {"process_group": desktop.bus.pid}
        if spec.input_method:
            fcitx = ime.fcitx5_args(clipboard=spec.clipboard)
            desktop.children.append(await _spawn(desktop, fcitx, log_file, **group))
            # XIM clients (xterm, xdg apps without an IM module) only find fcitx5 if it is
            # registered before they start; a slow fcitx5 costs Japanese input, not the desktop.
            ime_deadline = min(deadline, time.monotonic() + IME_READY_TIMEOUT)
            env, who = desktop.session_env(), spec.account.popen_kwargs()
            if not await ime.wait_xim_server(env, who, ime_deadline):
                log.warning("desktop :%d: fcitx5 not ready; starting without it", spec.display)
        try:
            desktop.session = await _spawn(desktop, list(spec.session_command), log_file, **group)
        except OSError as exc:
            _log_failure(desktop, f"the session command failed: {exc.strerror}")
            raise WorkspaceStartFailed() from None
        if desktop.session.returncode is not None:  # nsenter could not exec it (exit 126/127)
            _log_failure(desktop, f"the session command exited {desktop.session.returncode}")
            raise WorkspaceStartFailed()
    log.info("desktop :%d port %d started for user %s", spec.display, spec.port, spec.user_id)


def _log_failure(desktop: XvncDesktop, why: str) -> None:
    try:
        tail = (desktop.runtime_dir / "session.log").read_bytes()[-2000:]
    except OSError:
        tail = b""
    log.warning(
        "desktop :%d for user %s: %s; log tail: %r",
        desktop.spec.display, desktop.spec.user_id, why, tail.decode("utf-8", "replace"),
    )  # fmt: skip
