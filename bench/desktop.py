"""The measured desktop: one TigerVNC Xvnc with openbox, plus the process helpers the bench uses.

Nothing here faces an untrusted peer; the Xvnc listens on loopback only (-localhost) behind a
random VncAuth password, and every process we start is stopped again within a bounded time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from gateway.workspace import toolkit_defaults
from gateway.workspace.desktop import FRAME_RATE
from gateway.workspace.lockdown import write_toolkit_defaults

log = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the daemon binds it right after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until 127.0.0.1:port accepts a connection, the process dies or the deadline passes."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {deadline:.0f} s")


def spawn(argv: list[str], log_path: Path, env: dict[str, str] | None = None,
          **kw: object) -> subprocess.Popen[bytes]:
    """Start a daemon in its own process group (so stop_group reaches its children)."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                start_new_session=True, **kw)  # type: ignore[call-overload]


def stop_group(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group we created, SIGKILL it if it is still there after `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
            # The leader is gone; give stragglers in its group the same signal once more.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue
    log.warning("process %s did not exit after SIGKILL", proc.pid)


@dataclass(frozen=True, slots=True)
class DesktopConfig:
    width: int = 1920
    height: int = 1080
    depth: int = 24
    frame_rate: int | None = None  # Xvnc -FrameRate; None: TigerVNC's default (60)
    #: GTK animations (and Chromium's smooth scrolling in browser-scroll). Off, as the gateway's
    #: teachers' desktops start (toolkit_defaults, issue 11 part AR), for every client; on, as
    #: every run before part AR had them.
    animations: bool = False


#: The flags the gateway gives teachers' desktops (gateway.workspace.desktop): what
#: ``--staffroom-desktop as-shipped`` starts for the Staffroom clients (issue 11 part AP).
AS_SHIPPED = DesktopConfig(frame_rate=FRAME_RATE)


def add_animations_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--desktop-animations", action="store_true",
        help="turn GTK's animations and the browser workload's smooth scrolling on in the "
             "desktop of every client (as in the runs before issue 11 part AR); by default both "
             "are off, as in the desktops the gateway starts")


def add_pointer_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--desktop-pointer", action="store_true",
        help="leave the pointer to the desktop, as in the runs before issue 11 part AS: Xvnc "
             "then draws it into the pixels of every client (its position is xdotool's, not "
             "the client's); by default each client's page puts its mouse on the pointer "
             "before a workload, as a teacher's hand rests on hers")


def with_animations(config: DesktopConfig | None, on: bool) -> DesktopConfig:
    return replace(config or DesktopConfig(), animations=on)


def add_staffroom_desktop_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--staffroom-desktop", choices=("shared", "as-shipped"), default="shared",
        help="Staffroom clients watch a desktop with TigerVNC's defaults, as noVNC's (shared, "
             f"the default), or one with the gateway's own Xvnc flags (-FrameRate {FRAME_RATE})")


class Desktop:
    """Xvnc :N at width x height x depth with openbox; `env` is what X clients run with."""

    def __init__(self, config: DesktopConfig | None = None) -> None:
        self.config = config or DesktopConfig()
        self.password = secrets.token_urlsafe(6)[:8]  # VncAuth uses at most 8 characters
        self.workdir = Path(tempfile.mkdtemp(prefix="staffroom-bench-"))
        self.display = ""
        self.rfb_port = 0
        self.env: dict[str, str] = {}
        self._xvnc: subprocess.Popen[bytes] | None = None
        self._wm: subprocess.Popen[bytes] | None = None
        self._apps: list[subprocess.Popen[bytes]] = []

    @property
    def xvnc_pid(self) -> int:
        assert self._xvnc is not None
        return self._xvnc.pid

    def start(self) -> None:
        passwd = self.workdir / "passwd"
        obfuscated = subprocess.run(["vncpasswd", "-f"], input=self.password.encode(),
                                    capture_output=True, check=True, timeout=10).stdout
        passwd.write_bytes(obfuscated)
        passwd.chmod(0o600)
        self.rfb_port = free_port()
        rfd, wfd = os.pipe()
        c = self.config
        argv = ["Xvnc", "-displayfd", str(wfd), "-geometry", f"{c.width}x{c.height}",
                "-depth", str(c.depth), "-rfbport", str(self.rfb_port), "-localhost",
                "-AlwaysShared", "-SecurityTypes", "VncAuth", "-PasswordFile", str(passwd),
                "-nolisten", "tcp", "-br"]
        if c.frame_rate is not None:
            argv += ["-FrameRate", str(c.frame_rate)]
        self._xvnc = spawn(argv, self.workdir / "xvnc.log", pass_fds=(wfd,))
        os.close(wfd)
        self.display = ":" + self._read_display(rfd)
        wait_for_port(self.rfb_port, 15, self._xvnc)
        home = self.workdir / "home"
        home.mkdir()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DISPLAY": self.display,
                    "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                    "XDG_CACHE_HOME": str(home / ".cache"), "NO_AT_BRIDGE": "1",
                    "LANG": "C.UTF-8"}
        # The toolkit defaults of a teacher's desktop, found as its session finds them: no GTK
        # animations, steady text cursors (a blinking one would add updates to every workload
        # and to the key-latency probe; xterms get +bc).
        defaults = write_toolkit_defaults(self.workdir / toolkit_defaults.DIR_NAME)
        self.env.update(toolkit_defaults.env(defaults))
        if c.animations:  # the user's own file wins over the defaults, as a teacher's does
            gtk = home / ".config" / "gtk-3.0"
            gtk.mkdir(parents=True)
            (gtk / "settings.ini").write_text("[Settings]\ngtk-enable-animations = true\n")
        self._wm = spawn(["openbox", "--sm-disable"], self.workdir / "openbox.log", self.env)
        self._wait_for_wm(10)
        log.info("desktop %s on rfb port %d", self.display, self.rfb_port)

    def _read_display(self, rfd: int) -> str:
        # Xvnc writes the display number it picked once it is ready; bound the wait.
        try:
            end = time.monotonic() + 15
            data = b""
            while not data.endswith(b"\n"):
                left = end - time.monotonic()
                if left <= 0 or not select.select([rfd], [], [], left)[0]:
                    raise TimeoutError("Xvnc did not report its display within 15 s")
                chunk = os.read(rfd, 16)
                if not chunk:
                    raise RuntimeError("Xvnc exited before reporting its display")
                data += chunk
            return data.decode().strip()
        finally:
            os.close(rfd)

    def _wait_for_wm(self, deadline: float) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            out = subprocess.run(["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], env=self.env,
                                 capture_output=True, text=True, timeout=5).stdout
            if "window id" in out:
                return
            time.sleep(0.1)
        raise TimeoutError("openbox did not take over the display")

    def stop(self) -> None:
        for app in self._apps:
            stop_group(app)
        for proc in (self._wm, self._xvnc):
            if proc is not None:
                stop_group(proc)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- things workloads do on the display -------------------------------------------------

    def launch(self, argv: list[str], name: str,
               extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start an X client on the display; it is stopped by close() or at the latest by stop()."""
        proc = spawn(argv, self.workdir / f"{name}.log", {**self.env, **(extra_env or {})})
        self._apps.append(proc)
        return proc

    def close(self, proc: subprocess.Popen[bytes]) -> None:
        stop_group(proc)
        if proc in self._apps:
            self._apps.remove(proc)

    async def xdo(self, *args: str, timeout: float = 120) -> str:
        """Run one xdotool command line (which may chain several commands) on the display."""
        return await self.run("xdotool", *args, timeout=timeout)

    async def pointer(self) -> tuple[int, int]:
        """Where the desktop's pointer is (xdotool getmouselocation)."""
        fields = dict(line.split("=", 1) for line in
                      (await self.xdo("getmouselocation", "--shell")).split() if "=" in line)
        return int(fields["X"]), int(fields["Y"])

    async def run(self, *argv: str, timeout: float = 30, ok: tuple[int, ...] = (0,)) -> str:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode not in ok:
            raise RuntimeError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} failed: "
                               f"{err.decode(errors='replace').strip()[:200]}")
        return out.decode()

    async def wait_window(self, *search: str, deadline: float = 15) -> str:
        """Id of a visible window matching `xdotool search` arguments, waiting up to `deadline`."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            with contextlib.suppress(RuntimeError):  # xdotool search exits 1 when nothing matches
                found = (await self.xdo("search", "--onlyvisible", *search)).split()
                if found:
                    return found[-1]
            await asyncio.sleep(0.1)
        raise TimeoutError(f"no window matching {search} within {deadline:.0f} s")
