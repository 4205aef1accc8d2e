"""The clients under test: how each one's server side is started, which page Chromium opens, and
which processes count as its "gateway" for CPU and memory.

Everything listens on loopback only; the VNC password travels in the URL fragment (never sent to
a server, never logged: `public_url` is what gets printed).
"""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from playwright.async_api import Page

from bench.desktop import Desktop, free_port, spawn, stop_group, wait_for_port

NOVNC_DIR = Path("/usr/share/novnc")
log = logging.getLogger("bench")


class Client(Protocol):
    """The plug-in point: one remote-desktop client measured against the shared desktop."""

    name: str

    async def start(self, desktop: Desktop) -> None:
        """Start the server side (gateway, agent, ...) attached to `desktop`'s Xvnc."""

    @property
    def page_url(self) -> str:
        """The page Chromium opens; it connects on its own (credentials in the URL or preset)."""

    @property
    def public_url(self) -> str:
        """page_url without secrets, for logs and results."""

    async def wait_ready(self, page: Page) -> None:
        """Return once the page shows the remote desktop; raise on failure."""

    async def focus_input(self, page: Page) -> None:
        """Give keyboard focus to whatever element forwards keys to the remote desktop."""

    def gateway_pids(self) -> list[int]:
        """Root pids of the server-side processes to measure (their descendants count too)."""

    async def stop(self) -> None:
        """Stop everything start() started, bounded in time."""


class NoVncClient:
    """noVNC 1.3 (Debian /usr/share/novnc) vnc_lite.html through websockify, default encodings.

    websockify only relays the WebSocket; the static noVNC files come from a separate
    http.server, so the measured "gateway" is the relay alone (as the Staffroom gateway, whose
    viewer page is served by the agent). websockify forks one child per connection: the
    measured tree is its pid plus descendants.
    """

    name = "novnc"

    def __init__(self, page: str = "vnc_lite.html") -> None:
        self.page = page
        self.ws_port = 0
        self.http_port = 0
        self._password = ""
        self._relay: subprocess.Popen[bytes] | None = None
        self._static: subprocess.Popen[bytes] | None = None

    async def start(self, desktop: Desktop) -> None:
        self._password = desktop.password
        self.ws_port, self.http_port = free_port(), free_port()
        self._static = spawn([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                              "--directory", str(NOVNC_DIR), str(self.http_port)],
                             desktop.workdir / "novnc-http.log")
        self._relay = spawn(["websockify", f"127.0.0.1:{self.ws_port}",
                             f"127.0.0.1:{desktop.rfb_port}"], desktop.workdir / "websockify.log")
        wait_for_port(self.http_port, 15, self._static)
        wait_for_port(self.ws_port, 15, self._relay)

    @property
    def public_url(self) -> str:
        return (f"http://127.0.0.1:{self.http_port}/{self.page}"
                f"?host=127.0.0.1&port={self.ws_port}&path=websockify")

    @property
    def page_url(self) -> str:
        # vnc_lite's readQueryVariable only matches "?name=" or "&name=", hence the lead-in key.
        return f"{self.public_url}#bench=1&password={self._password}"

    async def wait_ready(self, page: Page) -> None:
        await page.wait_for_function(
            "document.getElementById('status')?.textContent.startsWith('Connected')"
            " && document.querySelector('#screen canvas')?.width > 0", timeout=20000)

    async def focus_input(self, page: Page) -> None:
        # noVNC listens for keys on its canvas (tabIndex -1); focus it without a click, which
        # would also reach the remote desktop.
        await page.evaluate("document.querySelector('#screen canvas').focus()")

    def gateway_pids(self) -> list[int]:
        return [self._relay.pid] if self._relay is not None else []

    async def stop(self) -> None:
        for proc in (self._relay, self._static):
            if proc is not None:
                stop_group(proc)
        self._relay = self._static = None


class StaffroomClient:
    """Staffroom: `staffroom gateway` (a subprocess, measured) + `staffroom agent connect` (the
    teacher's PC) + the viewer page the agent serves. The teacher's workspace is assigned to the
    bench's existing desktop (provider `vnc`), so both clients watch the same Xvnc.

    With ``sessions`` > 1 (bench.capacity) there are that many teachers, each with their own
    token and agent, all assigned to the same shared desktop: one gateway carries N sessions,
    each with its own RFB connection, framebuffer, watermark and encoder (``page_urls``)."""

    name = "staffroom"
    # Policy sections narrowed for the bench teachers (matched by user, so everything else
    # stays the default): none here; the variants below set one.
    policy = ""

    def __init__(self, sessions: int = 1) -> None:
        self.sessions = sessions
        #: What the gateway logged at start ("display path: ..."), once started.
        self.display_path: str | None = None
        self._world: object | None = None
        self._agents: list[subprocess.Popen[str]] = []
        self._urls: list[str] = []

    async def start(self, desktop: Desktop) -> None:
        import asyncio

        from tests.fixtures.gateway import build_world

        root = desktop.workdir / self.name  # one per client: a run has two Staffroom variants
        root.mkdir()
        self._world = world = await asyncio.to_thread(
            build_world, root, extra_policies=self.policies())
        self.display_path = gateway_display_path(world.gateway.log)  # type: ignore[attr-defined]
        pw = root / "vnc.pw"
        pw.write_text(desktop.password + "\n")
        conf = self._freshclam(root)
        for user in self.users():
            teacher = await asyncio.to_thread(world.add_teacher, user)  # type: ignore[attr-defined]
            world.admin.run("workspaces", "assign", user, "--vnc",  # type: ignore[attr-defined]
                            f"127.0.0.1:{desktop.rfb_port}", "--password-file", str(pw))
            self._urls.append(await self._connect(world, teacher, root / f"home-{user}", conf))

    def users(self) -> list[str]:
        return ["t.bench" if i == 0 else f"t.bench{i}" for i in range(self.sessions)]

    def policies(self) -> dict[str, str]:
        """The bench's gateway's narrowing policy file, if this variant has one."""
        if not self.policy:
            return {}
        users = ", ".join(f'"{u}"' for u in self.users())
        return {f"50-bench-{self.name}.toml": f"[match]\nusers = [{users}]\n\n{self.policy}"}

    @staticmethod
    def _freshclam(root: Path) -> Path:
        from datetime import UTC, datetime, timedelta

        from tests.fixtures.clamav import write_cvd

        (root / "clamav").mkdir()
        write_cvd(root / "clamav" / "daily.cvd", datetime.now(UTC) - timedelta(hours=1))
        conf = root / "freshclam.conf"
        conf.write_text(f"DatabaseDirectory {root / 'clamav'}\n")
        return conf

    async def _connect(self, world: object, teacher: object, home: Path, conf: Path) -> str:
        """Run one agent; returns the viewer URL it prints."""
        import asyncio
        import os

        from tests.fixtures.gateway import STAFFROOM

        env = {**os.environ, "SOFTHSM2_CONF": str(teacher.token.conf),  # type: ignore
               "STAFFROOM_FRESHCLAM_CONF": str(conf), "STAFFROOM_HOME": str(home)}
        agent = subprocess.Popen([STAFFROOM, *world.connect_args(teacher)],  # type: ignore
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True, stdin=subprocess.DEVNULL, start_new_session=True)
        self._agents.append(agent)
        assert agent.stdout is not None
        line = await asyncio.to_thread(agent.stdout.readline)
        while line and not line.startswith("Viewer: "):
            line = await asyncio.to_thread(agent.stdout.readline)
        if not line:
            raise RuntimeError("the Staffroom agent did not connect")
        # The agent prints its private launch file; the loopback viewer URL is inside.
        from tests.fixtures.agent import viewer_url_from

        return viewer_url_from(Path(line.removeprefix("Viewer: ").strip()))

    @property
    def page_urls(self) -> list[str]:
        return list(self._urls)

    @property
    def public_url(self) -> str:
        return self._urls[0].split("?", 1)[0] if self._urls else ""

    @property
    def page_url(self) -> str:
        return self._urls[0] if self._urls else ""

    async def wait_ready(self, page: Page) -> None:
        await page.wait_for_function(
            "document.body.dataset.state === 'connected'"
            " && document.getElementById('screen')?.width > 0", timeout=20000)

    async def focus_input(self, page: Page) -> None:
        await page.evaluate("document.getElementById('screen').focus()")

    def gateway_pids(self) -> list[int]:
        process = getattr(getattr(self._world, "gateway", None), "process", None)
        return [process.pid] if process is not None else []

    async def stop(self) -> None:
        from tests.fixtures.gateway import stop_gateway

        for agent in self._agents:
            stop_group(agent)  # type: ignore[arg-type]
            if agent.stdout is not None:
                agent.stdout.close()  # the pipe its "Viewer:" line came through
        self._agents, self._urls = [], []
        if self._world is not None:
            stop_gateway(self._world.gateway)  # type: ignore[attr-defined]
            self._world = None


class StaffroomNoWatermarkClient(StaffroomClient):
    """Staffroom with the watermark switched off by a policy file for the bench teachers: what
    the display path costs without it, measured in the same run."""

    name = "staffroom-nowm"
    policy = "[watermark]\nenabled = false\n"


class StaffroomLossyClient(StaffroomClient):
    """Staffroom with display.quality = "lossy" (the metered-link setting: photos stay JPEG,
    no lossless refresh), watermark on: what that setting saves, measured in the same run."""

    name = "staffroom-lossy"
    policy = '[display]\nquality = "lossy"\n'


class StaffroomUnpacedClient(StaffroomClient):
    """Staffroom with display.max_frame_rate = 0 (no limit; the default is 30 since issue 11
    part AM), watermark on: what the frame pacing costs or saves, measured in the same run."""

    name = "staffroom-unpaced"
    policy = "[display]\nmax_frame_rate = 0\n"


BUILTIN: dict[str, type] = {"novnc": NoVncClient, "staffroom": StaffroomClient,
                            "staffroom-nowm": StaffroomNoWatermarkClient,
                            "staffroom-lossy": StaffroomLossyClient,
                            "staffroom-unpaced": StaffroomUnpacedClient}


def load_client(spec: str) -> Client:
    """'novnc', 'staffroom', or 'package.module:ClassName' for a client living elsewhere."""
    if spec in BUILTIN:
        return BUILTIN[spec]()  # type: ignore[no-any-return]
    module, sep, attr = spec.partition(":")
    if not sep:
        raise ValueError(f"unknown client {spec!r}: use one of {sorted(BUILTIN)} or module:Class")
    return getattr(importlib.import_module(module), attr)()  # type: ignore[no-any-return]


def gateway_display_path(gateway_log: Path | None) -> str | None:
    """The display path a Staffroom gateway logged at start ("display path: compiled (...)", or
    why it runs pure Python), or None if it logged none."""
    if gateway_log is None or not gateway_log.exists():
        return None
    for line in gateway_log.read_text(errors="replace").splitlines():
        try:
            message = json.loads(line).get("message")
        except (ValueError, AttributeError):
            continue
        if isinstance(message, str) and message.startswith("display path:"):
            return message
    return None


def display_path_of(bench_path: str, gateway_paths: list[str | None]) -> str:
    """The display path to report: the one the gateways measured logged. The bench's own
    import can differ: a C kernel or compiled module edited after the last install makes every
    gateway started since run pure Python (docs/ADMINS.md), which the bench's header once hid."""
    logged = sorted({p for p in gateway_paths if p})
    if not logged:
        return bench_path
    if logged != [bench_path]:
        log.warning("the gateways ran %s, the bench itself %s", " / ".join(logged), bench_path)
    return " / ".join(logged)
