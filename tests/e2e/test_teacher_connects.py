"""Issue 4 end to end, with real parts: a SoftHSM2 key, a real Xvnc desktop, `staffroom agent
connect --no-browser`, and Chromium (Playwright) on the printed viewer URL: the page shows the
desktop's pixels, typing reaches an xterm, a click lands where aimed; a revoked key and stale
antivirus definitions are refused with their sentences, and every decision is audited."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.fixtures.agent import Agent, freshclam_conf
from tests.fixtures.desktop_view import (
    CHROMIUM_ARGS,
    canvas_image,
    close_enough,
    desktop_of,
    open_full_hd_viewer,
    wait_for_window,
    wait_until,
    x_screenshot,
)
from tests.fixtures.desktops import NO_XIM
from tests.fixtures.gateway import STAFFROOM, World, running_world

pytestmark = pytest.mark.slow

POLICY = f"""
[match]
roles = ["teacher"]

[workspace]
session_command = "xterm -geometry 100x30+40+40 -fa Monospace -fs 14 {NO_XIM}"
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("world"), policy_overrides=POLICY) as w:
        yield w


def run_refused(world: World, user: str, freshclam: Path) -> subprocess.CompletedProcess[str]:
    teacher = world.teachers[user]
    env = {**os.environ, "SOFTHSM2_CONF": str(teacher.token.conf),  # type: ignore
           "STAFFROOM_FRESHCLAM_CONF": str(freshclam)}
    return subprocess.run([STAFFROOM, *world.connect_args(teacher)], env=env, text=True,
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


async def test_teacher_works_on_the_school_desktop_in_the_browser(
    world: World, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    world.add_teacher("t.sato")
    agent = Agent(world, "t.sato", freshclam_conf(tmp_path, 0.5))
    try:
        url = agent.viewer_url()
        assert url.startswith("http://127.0.0.1:")
        _, xenv = desktop_of(world, "t.sato")
        wait_for_window(xenv, "xterm")
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            await page.goto(url)

            # The page shows the desktop's pixels.
            async def matches() -> bool:
                try:
                    canvas = await canvas_image(page)
                    same = close_enough(canvas, x_screenshot(xenv)) > 0.97
                except AssertionError:
                    return False
                # Not a blank page matching a blank desktop: the xterm is there.
                return same and len(canvas.getcolors(1 << 20) or []) > 2
            assert await wait_until(matches), "the canvas never matched the Xvnc framebuffer"

            # Text typed in the page reaches the xterm on the desktop.
            # The desktop's /tmp is its own: the command writes into the teacher's home, which
            # the gateway's host sees at DATA_DIR/homes/<user>.
            name = f"staffroom-e2e-{os.getpid()}"
            marker = world.gateway.data / "homes" / "t.sato" / name
            marker.unlink(missing_ok=True)
            box = await page.locator("canvas").bounding_box()
            assert box is not None
            await page.mouse.click(box["x"] + 200 * box["width"] / 1920,
                                   box["y"] + 150 * box["height"] / 1080)
            await page.keyboard.type(f"echo typed-in-browser > ~/{name}")
            await page.keyboard.press("Enter")

            async def written() -> bool:
                return marker.exists() and marker.read_text().strip() == "typed-in-browser"
            assert await wait_until(written), "the typed command never ran in the xterm"
            marker.unlink(missing_ok=True)

            # A click lands where it was aimed (desktop pixel 1500, 900).
            await page.mouse.click(box["x"] + 1500 * box["width"] / 1920,
                                   box["y"] + 900 * box["height"] / 1080)
            loc = subprocess.run(["xdotool", "getmouselocation"], env=xenv, text=True,
                                 capture_output=True, check=True).stdout
            x, y = (int(v) for v in re.findall(r"[xy]:(\d+)", loc)[:2])
            assert abs(x - 1500) <= 2 and abs(y - 900) <= 2, loc
            await browser.close()
    finally:
        agent.stop()
    audit = world.admin.run("audit", "export", "--json", "--user", "t.sato").json()
    kinds = [(r["kind"], r["outcome"]) for r in audit]  # type: ignore[union-attr]
    assert ("session.login", "ok") in kinds and ("session.start", "ok") in kinds


def test_revoked_key_and_stale_definitions_are_refused_with_their_sentences(
    world: World, tmp_path: Path
) -> None:
    world.add_teacher("t.ito", name="伊藤 一郎")
    stale = run_refused(world, "t.ito", freshclam_conf(tmp_path, 9))
    assert stale.returncode != 0
    assert "antivirus definitions are 9 days old" in stale.stderr, stale.stderr
    assert "freshclam" in stale.stderr and "Traceback" not in stale.stderr

    world.cio.run("keys", "revoke", "--user", "t.ito", "--reason", "keyCompromise")
    revoked = run_refused(world, "t.ito", freshclam_conf(tmp_path, 0.5))
    assert revoked.returncode != 0
    assert "Your key has been revoked" in revoked.stderr, revoked.stderr

    audit = world.admin.run("audit", "export", "--json", "--user", "t.ito",
                            "--kind", "session.login").json()
    codes = [r["details"]["code"] for r in audit if r["outcome"] == "denied"]  # type: ignore
    assert "definitions-stale" in codes and "cert-revoked" in codes


class BlipProxy:
    """A TCP relay between agent and gateway whose connections can be cut (a network blip)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def blip(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.blip()
        if self.server is not None:
            self.server.close()


async def test_a_network_blip_resumes_the_same_session(world: World, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    world.add_teacher("t.blip", name="中村 健")
    proxy = BlipProxy(world.gateway.port)
    await proxy.start()
    agent = Agent(world, "t.blip", freshclam_conf(tmp_path, 0.5),
                  gateway=f"https://127.0.0.1:{proxy.port}")
    try:
        url = await asyncio.to_thread(agent.viewer_url)
        sessions = world.admin.run("sessions", "list", "--json").json()
        before = next(s["id"] for s in sessions if s["user"] == "t.blip")  # type: ignore
        _, xenv = desktop_of(world, "t.blip")
        wait_for_window(xenv, "xterm")  # what the teacher sees before typing
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            await page.goto(url)
            await page.wait_for_function("() => document.body.dataset.state === 'connected'")
            name = f"staffroom-blip-{os.getpid()}"
            marker = world.gateway.data / "homes" / "t.blip" / name
            marker.unlink(missing_ok=True)
            proxy.blip()
            await asyncio.to_thread(agent.wait_err, "Resumed the same session.")
            sessions = world.admin.run("sessions", "list", "--json").json()
            assert [s["id"] for s in sessions if s["user"] == "t.blip"] == [before]  # type: ignore
            # The page carries on: typing still reaches the same desktop.
            await page.locator("canvas").click(position={"x": 150, "y": 100})
            await page.keyboard.type(f"echo after-blip > ~/{name}")
            await page.keyboard.press("Enter")

            async def written() -> bool:
                return marker.exists() and marker.read_text().strip() == "after-blip"
            assert await wait_until(written), "typing after the blip never reached the desktop"
            marker.unlink(missing_ok=True)
            await browser.close()
        assert xenv["DISPLAY"] == desktop_of(world, "t.blip")[0]  # the desktop was untouched
    finally:
        agent.stop()
        await proxy.stop()
    audit = world.admin.run("audit", "export", "--json", "--user", "t.blip").json()
    kinds = [r["kind"] for r in audit]  # type: ignore[union-attr]
    assert "session.resume" in kinds and kinds.count("session.start") == 1


async def test_an_idle_session_ends_on_time_with_its_message(world: World,
                                                             tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    world.add_teacher("t.idle", name="小林 愛")
    (world.gateway.data / "policies" / "60-idle.toml").write_text(
        '[match]\nusers = ["t.idle"]\n\n[session]\nidle_timeout = "4s"\n')
    log = world.gateway.log
    assert log is not None and world.gateway.process is not None
    reloads = log.read_text().count("policy reloaded")
    world.gateway.process.send_signal(signal.SIGHUP)

    async def reloaded() -> bool:
        return log.read_text().count("policy reloaded") > reloads
    assert await wait_until(reloaded, timeout=10)
    # The browser is up before the agent connects: the 4 s start when the session does, and a
    # slow Chromium start on a loaded machine must not eat them.
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                          args=CHROMIUM_ARGS)
        page = await browser.new_page()
        agent = Agent(world, "t.idle", freshclam_conf(tmp_path, 0.5))
        try:
            url = await asyncio.to_thread(agent.viewer_url)
            started = time.monotonic()
            await page.goto(url)
            await page.wait_for_selector("#ended", state="visible", timeout=20000)
            shown = await page.inner_text("#ended-text")
            await browser.close()
            assert "ended after 4 seconds without input" in shown
            assert 3.5 <= time.monotonic() - started <= 15
            assert agent.proc.wait(timeout=10) == 0
            assert "Session ended: Your session ended after 4 seconds without input" in \
                "".join(agent.err)
        finally:
            agent.stop()


async def test_an_existing_desktop_served_by_x11vnc(world: World, tmp_path: Path,
                                                    x11vnc_desktop) -> None:  # type: ignore
    """Provider `vnc`: the teacher's sessions attach to a desktop the school already runs."""
    from playwright.async_api import async_playwright

    desktop = x11vnc_desktop
    desktop.spawn("xterm", "-geometry", "60x12+30+30", "-bg", "navy", "-fg", "yellow")
    world.add_teacher("t.pc", name="学校 端末")
    pw = tmp_path / "vnc.pw"
    pw.write_text(desktop.password + "\n")
    world.admin.run("workspaces", "assign", "t.pc", "--vnc", f"127.0.0.1:{desktop.port}",
                    "--password-file", str(pw))
    agent = Agent(world, "t.pc", freshclam_conf(tmp_path, 0.5))
    try:
        url = await asyncio.to_thread(agent.viewer_url)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(url)

            async def matches() -> bool:
                try:
                    canvas = await canvas_image(page)
                    return close_enough(canvas, desktop.grab()) > 0.97 and \
                        len(canvas.getcolors(1 << 20) or []) > 2
                except AssertionError:
                    return False
            assert await wait_until(matches), "the canvas never matched the x11vnc desktop"
            await browser.close()
    finally:
        agent.stop()


def test_agent_check_reports_posture_and_the_key(world: World, tmp_path: Path) -> None:
    import json

    teacher = world.add_teacher("t.check", name="確認 太郎")
    token = teacher.token
    base = ["agent", "check", "--module", token.module, "--token-label",  # type: ignore
            token.label, "--json"]  # type: ignore[attr-defined]
    for age, ok in ((0.5, True), (9, False)):
        env = {**os.environ, "SOFTHSM2_CONF": str(token.conf),  # type: ignore[attr-defined]
               "STAFFROOM_FRESHCLAM_CONF": str(freshclam_conf(tmp_path, age))}
        p = subprocess.run([STAFFROOM, *base], env=env, capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        report = json.loads(p.stdout)
        assert report["ok"] is ok and (p.returncode == 0) is ok, p.stdout + p.stderr
        names = {c["name"]: c for c in report["checks"]}
        assert names["Key certificate"]["ok"] and "t.check" in names["Key certificate"]["detail"]
        if not ok:
            fix = names["Antivirus definitions"]["fix"]
            assert "9 days old" in fix and "freshclam" in fix


async def test_the_watermark_survives_removing_everything_but_the_canvas(
    world: World, tmp_path: Path
) -> None:
    """The watermark is in the pixels the gateway sends: stripping the page leaves it there."""
    from playwright.async_api import async_playwright

    world.add_teacher("t.mark", name="透かし 確認")
    agent = Agent(world, "t.mark", freshclam_conf(tmp_path, 0.5))
    try:
        url = await asyncio.to_thread(agent.viewer_url)
        _, xenv = desktop_of(world, "t.mark")
        async with async_playwright() as p:
            browser, page = await open_full_hd_viewer(p, url)
            # Everything but the canvas (and the elements holding it) goes.
            await page.evaluate("""() => {
                const canvas = document.querySelector('canvas');
                for (const el of [...document.body.querySelectorAll('*')]) {
                    if (el !== canvas && !el.contains(canvas)) el.remove();
                }
                window.dispatchEvent(new Event('resize'));
            }""")
            await asyncio.sleep(1)
            shot = Image.open(io.BytesIO(await page.screenshot())).convert("RGB")
            assert len(shot.getcolors(1 << 20) or []) > 2  # the stripped page still shows it
            seen = await canvas_image(page)  # exactly the pixels that page shows
            await browser.close()
        desktop = x_screenshot(xenv)
        # Where the page differs from the desktop is the watermark: a sparse, faint pattern.
        differs = 1 - close_enough(seen, desktop, tolerance=6)
        assert 0.002 < differs < 0.2, differs
    finally:
        agent.stop()

