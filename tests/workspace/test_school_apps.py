"""The default school session in a sealed desktop: Chromium opens workspace.home_url on an allowed
host and refuses any other site by managed policy; LibreOffice runs; nothing is driven from outside
but keystrokes (xdotool inside the desktop, as the teacher)."""

from __future__ import annotations

import asyncio
import http.server
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.workspace import WorkspaceManager, toolkit_defaults
from gateway.workspace.desktop import XvncDesktop
from tests.fixtures.workspace import AS_ROOT, in_desktop, needs_sandbox, sealed, unmount_under

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not AS_ROOT, reason="per-teacher accounts need the gateway to be root"),
    needs_sandbox,
]

TITLE = "Kita School Affairs"
ROGUE_PORT = 8199  # a site served inside the desktop itself: reachable, but not allowed


class SchoolSystem(http.server.ThreadingHTTPServer):
    """The school-affairs web system on the host's loopback, recording the paths asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        system = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                system.paths.append(self.path)
                body = f"<title>{TITLE} {self.path}</title><h1>出欠</h1>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture(scope="module")
def school() -> Iterator[SchoolSystem]:
    server = SchoolSystem()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="staffroom-apps-test-"))
    path.chmod(0o711)
    yield path
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["auto", "root"])
async def desktop(
    request: pytest.FixtureRequest, data_dir: Path, school: SchoolSystem
) -> AsyncIterator[XvncDesktop]:
    mgr = WorkspaceManager(
        data_dir, session_command="staffroom-session", geometry="1280x800",
        input_method=False, display_base=860, **sealed(data_dir),
        allowed_hosts=[f"127.0.0.1:{school.port}"], home_quota_bytes=256 << 20,
        home_url=f"http://127.0.0.1:{school.port}/home", sandbox_mode=request.param,
    )  # fmt: skip
    try:
        user = f"h.kato-{request.param}"
        await mgr.attach(user)
        found = mgr.xvnc.get(user)
        assert found is not None
        yield found
    finally:
        await mgr.shutdown()


async def window_named(desktop: XvncDesktop, name: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        found = await asyncio.to_thread(
            in_desktop, desktop, f"xdotool search --name '{name}' getwindowname %@ 2>/dev/null"
        )
        if found.stdout.strip():
            return found.stdout.strip()
        assert time.monotonic() < deadline, f"no window named {name!r}"
        await asyncio.sleep(0.5)


async def go_to(desktop: XvncDesktop, url: str) -> None:
    """Type ``url`` into Chromium's address bar, as the teacher would."""
    done = await asyncio.to_thread(
        in_desktop, desktop,
        f"w=$(xdotool search --class chromium | tail -1); xdotool windowactivate --sync $w; "
        f"xdotool key --window $w ctrl+l; sleep 0.3; xdotool type --delay 20 '{url}'; "
        f"xdotool key Return",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def test_browser_opens_the_school_system_and_refuses_other_sites(
    desktop: XvncDesktop, school: SchoolSystem
) -> None:
    assert f"{TITLE} /home" in await window_named(desktop, f"{TITLE} /home", timeout=60)
    assert "/home" in school.paths  # fetched through the desktop's relay, by the browser
    # A site the desktop *can* reach (it runs inside the desktop itself) but the policy does not
    # list: the browser must not even ask for it.
    rogue = await asyncio.to_thread(
        in_desktop, desktop,
        f"mkdir -p /tmp/rogue && echo '<title>ROGUE</title>' > /tmp/rogue/index.html && "
        f"(setsid python3 -m http.server {ROGUE_PORT} --bind 127.0.0.1 -d /tmp/rogue "
        f">/tmp/rogue.log 2>&1 &) && sleep 1 && "
        f"python3 -c 'import urllib.request as u; "
        f"print(u.urlopen(\"http://127.0.0.1:{ROGUE_PORT}/\").read().decode())'",
    )  # fmt: skip
    assert "ROGUE" in rogue.stdout, rogue.stderr  # reachable from inside
    before = len((await asyncio.to_thread(in_desktop, desktop, "cat /tmp/rogue.log")).stdout)
    # Positive control: the same typing reaches an allowed page.
    await go_to(desktop, f"http://127.0.0.1:{school.port}/grades")
    assert f"{TITLE} /grades" in await window_named(desktop, f"{TITLE} /grades")
    await go_to(desktop, f"http://127.0.0.1:{ROGUE_PORT}/")
    await asyncio.sleep(3)
    titles = await asyncio.to_thread(
        in_desktop, desktop, "xdotool search --class chromium getwindowname %@ 2>/dev/null"
    )
    assert "ROGUE" not in titles.stdout
    log = (await asyncio.to_thread(in_desktop, desktop, "cat /tmp/rogue.log")).stdout
    assert log[before:].count("GET") == 0, log  # blocked by URLBlocklist before any request


async def test_policy_file_and_office_suite(desktop: XvncDesktop) -> None:
    shown = await asyncio.to_thread(
        in_desktop, desktop, "cat /etc/chromium/policies/managed/staffroom.json"
    )
    assert '"DeveloperToolsAvailability": 2' in shown.stdout
    assert '"URLBlocklist": [\n  "*"\n ]' in shown.stdout
    changed = await asyncio.to_thread(
        in_desktop, desktop, "echo '{}' > /etc/chromium/policies/managed/staffroom.json"
    )
    assert changed.returncode != 0  # read-only to the teacher
    deadline = time.monotonic() + 60
    while True:
        names = await asyncio.to_thread(in_desktop, desktop, "cat /proc/[0-9]*/comm")
        if "soffice.bin" in names.stdout.split():
            break
        assert time.monotonic() < deadline, "LibreOffice never started"
        await asyncio.sleep(1)


async def test_the_browser_scrolls_without_animation(desktop: XvncDesktop) -> None:
    """The school session starts Chromium with toolkit_defaults' flags: a wheel step is one
    redraw of the page, not several (docs/PERFORMANCE.md, issue 11 part AR)."""
    deadline = time.monotonic() + 60
    while True:
        found = await asyncio.to_thread(
            in_desktop, desktop,
            "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = chromium ] && "
            "tr '\\0' ' ' < $p/cmdline && echo; done",
        )  # fmt: skip
        browsers = [line for line in found.stdout.splitlines() if "--type=" not in line]
        if browsers:
            break
        assert time.monotonic() < deadline, "Chromium never started"
        await asyncio.sleep(1)
    for flag in toolkit_defaults.CHROMIUM_FLAGS:
        assert flag in browsers[0].split(), browsers[0]
