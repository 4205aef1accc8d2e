"""Cold start and idle memory of a sealed school desktop (issue 9's numbers).

    .venv/bin/python -m bench.desktop_start [--runs 3] [--idle 20] [--out F.json]

Each run: a fresh gateway (real `staffroom gateway`), a teacher with a key on a SoftHSM2 token, a
school-affairs page on an allowed loopback host, and the default session (`staffroom-session`:
Chromium on workspace.home_url, LibreOffice, openbox) in the teacher's two bubblewrap rooms.
A system Chromium (Playwright) is launched *before* the clock starts, as a teacher's browser
would already be open. Times from starting `staffroom agent connect`:
  - session: the agent prints the viewer URL (desktop started, RFB connected, welcome sent);
  - first pixel: the viewer page's canvas shows more than one colour;
  - school page: the desktop's Chromium window shows the school page's title;
  - warm session: the same login again while the desktop runs (the login's own cost).
Memory: PSS of every process running as the teacher's uid (Xvnc, Chromium, LibreOffice,
openbox, the bus; both rooms), after --idle seconds with nobody typing.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.measure import pss_bytes, rss_bytes

TITLE = "Kita School Affairs"


def school_page() -> int:
    body = f"<title>{TITLE}</title><h1>出欠・成績</h1>".encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def processes_of(uid: int) -> list[int]:
    found = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            status = (pid_dir / "status").read_text().splitlines()
        except OSError:
            continue
        uid_line = next((line for line in status if line.startswith("Uid:")), "")
        state = next((line for line in status if line.startswith("State:")), "")
        if uid_line and int(uid_line.split()[1]) == uid and " Z" not in state:
            found.append(int(pid_dir.name))
    return found


def window_title(uid: int) -> str:
    """Chromium's window names, asked from inside the teacher's session room."""
    for pid in processes_of(uid):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm == "openbox":
            userns = [] if os.readlink(f"/proc/{pid}/ns/user") == \
                os.readlink("/proc/self/ns/user") else ["-U"]
            done = subprocess.run(
                ["setpriv", "--clear-groups", "--", "nsenter", "-t", str(pid), *userns, "-m",
                 "-p", "-n", "-r", "-w", "-S", str(uid), "-G", str(uid), "--", "sh", "-c",
                 "DISPLAY=$(cat /proc/1/environ | tr '\\0' '\\n' | sed -n 's/^DISPLAY=//p') "
                 f"XAUTHORITY=/run/user/{uid}/Xauthority "
                 "xdotool search --class chromium getwindowname %@ 2>/dev/null"],
                capture_output=True, text=True, timeout=10)  # fmt: skip
            return done.stdout
    return ""


async def one_run(root: Path, idle: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from gateway.datadir import DataDir
    from gateway.store.open import open_store
    from tests.fixtures.agent import freshclam_conf
    from tests.fixtures.gateway import STAFFROOM, build_world, stop_gateway

    port = school_page()
    world = await asyncio.to_thread(build_world, root, policy_overrides=(
        '[match]\nroles = ["teacher"]\n\n[workspace]\nsession_command = "staffroom-session"\n'
        f'allowed_hosts = ["127.0.0.1:{port}"]\nhome_url = "http://127.0.0.1:{port}/"\n'
        '\n[session]\nmax_concurrent = 2\n'))  # the warm login while the first lingers
    agent = None
    try:
        teacher = await asyncio.to_thread(world.add_teacher, "t.bench")
        env = {**os.environ, "SOFTHSM2_CONF": str(teacher.token.conf),  # type: ignore
               "STAFFROOM_FRESHCLAM_CONF": str(freshclam_conf(root, 0.5)),
               "STAFFROOM_HOME": str(root / "home-t")}
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=["--no-sandbox", "--disable-gpu"])
            page = await browser.new_page()
            started = time.monotonic()
            agent = subprocess.Popen([STAFFROOM, *world.connect_args(teacher)], env=env,
                                     stdout=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)  # fmt: skip
            assert agent.stdout is not None
            url = await asyncio.to_thread(agent.stdout.readline)
            while not url.startswith("Viewer: "):
                url = await asyncio.to_thread(agent.stdout.readline)
                assert url, "the agent did not connect"
            session = time.monotonic() - started
            await page.goto(url.removeprefix("Viewer: ").strip())
            await page.wait_for_function(
                """() => { const c = document.querySelector('canvas');
                   if (!c || !c.width) return false;
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   for (let i = 4; i < d.length; i += 4 * 97)
                     if (d[i] !== d[0] || d[i+1] !== d[1] || d[i+2] !== d[2]) return true;
                   return false; }""", polling=20, timeout=30_000)
            first_pixel = time.monotonic() - started
            data = DataDir(world.gateway.data)
            store = open_store(data, data.read_config())
            uid = store.desktop_uid("t.bench")
            store.close()
            assert uid is not None
            while TITLE not in await asyncio.to_thread(window_title, uid):
                assert time.monotonic() - started < 60, "the school page never showed"
                await asyncio.sleep(0.1)
            school = time.monotonic() - started
            await asyncio.sleep(idle)
            pids = processes_of(uid)
            pss = sum(pss_bytes(pid) for pid in pids)
            rss = sum(rss_bytes(pid) for pid in pids)
            by_program: dict[str, float] = {}
            for pid in pids:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
                by_program[name] = by_program.get(name, 0) + pss_bytes(pid) / 2**20
            # The same login again with the desktop already running: what the login itself
            # costs (token, posture, TLS), so cold minus warm is the desktop's own start.
            agent.terminate()
            agent.wait(timeout=10)
            started = time.monotonic()
            agent = subprocess.Popen([STAFFROOM, *world.connect_args(teacher)], env=env,
                                     stdout=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)  # fmt: skip
            assert agent.stdout is not None
            while not (await asyncio.to_thread(agent.stdout.readline)).startswith("Viewer: "):
                assert agent.poll() is None, "the agent did not reconnect"
            warm = time.monotonic() - started
            await browser.close()
        return {"session_s": round(session, 3), "warm_session_s": round(warm, 3),
                "first_pixel_s": round(first_pixel, 3),
                "school_page_s": round(school, 3), "processes": len(pids),
                "pss_mib": round(pss / 2**20, 1), "rss_mib": round(rss / 2**20, 1),
                "pss_mib_by_program": {k: round(v, 1) for k, v in sorted(by_program.items())}}
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(timeout=10)
        stop_gateway(world.gateway)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.desktop_start", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    runs = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="staffroom-bench-start-") as tmp:
            root = Path(tmp)
            root.chmod(0o711)
            result = asyncio.run(one_run(root, args.idle))
            print(f"run {n + 1}: {result}", flush=True)
            runs.append(result)
    summary = {key: statistics.median(r[key] for r in runs) for key in runs[0]
               if isinstance(runs[0][key], (int, float))}
    report = {"runs": runs, "median": summary, "loadavg": os.getloadavg(),
              "cpus": os.cpu_count()}
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
