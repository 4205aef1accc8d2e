"""The demo: a gateway, a CIO-issued key on a SoftHSM2 token, a teacher's sealed Xvnc desktop
with the school apps (Chromium on the school-affairs system served here, LibreOffice, openbox),
the agent connected — everything on loopback. Ctrl+C stops it all."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fixtures.clamav import write_cvd
from tests.fixtures.gateway import STAFFROOM, build_world, stop_gateway

SCHOOL_PAGE = """<!doctype html><meta charset="utf-8"><title>北小学校 校務支援システム</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #999;padding:4px 10px}}
table{{border-collapse:collapse}}</style>
<h1>北小学校 校務支援システム</h1><p>{today} ・ 3年2組 出欠</p>
<table><tr><th>番号</th><th>氏名</th><th>出欠</th></tr>
<tr><td>1</td><td>青木 さくら</td><td>出席</td></tr>
<tr><td>2</td><td>井上 はると</td><td>遅刻</td></tr>
<tr><td>3</td><td>上田 ゆい</td><td>出席</td></tr></table>
<p>(Staffroom demo: a school system on an allowed host. Any other site is blocked.)</p>
"""


def school_system() -> int:
    """Serve the demo's school-affairs page on 127.0.0.1 (an allowed host); return its port."""
    page = SCHOOL_PAGE.format(today=datetime.now().strftime("%Y-%m-%d")).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def definitions(root: Path) -> Path:
    """Real ClamAV definitions when this machine has fresh ones; otherwise demo definitions
    in the real CVD format (this machine cannot download them: there is no network)."""
    system = Path("/var/lib/clamav")
    for name in ("daily.cld", "daily.cvd"):
        f = system / name
        if f.exists() and time.time() - f.stat().st_mtime < 2 * 86400:
            return Path("/etc/clamav/freshclam.conf")
    db = root / "clamav"
    db.mkdir()
    write_cvd(db / "daily.cvd", datetime.now(UTC) - timedelta(hours=6))
    conf = root / "freshclam.conf"
    conf.write_text(f"DatabaseDirectory {db}\n")
    print("  (no fresh ClamAV definitions on this machine: using demo definitions, 6 hours old)")
    return conf


def main() -> int:
    # Each line as soon as it is printed, also into a pipe (`bash .ci/demo | tee demo.log`).
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    root = Path(tempfile.mkdtemp(prefix="staffroom-demo-"))
    root.chmod(0o711)
    port = school_system()
    print(f"Staffroom demo in {root}")
    print(f"- the school-affairs system answers on http://127.0.0.1:{port}/ (an allowed host)")
    print("- creating the gateway (CA, TLS, state, audit, policies) and starting it…")
    world = agent = None
    try:
        world = build_world(root, policy_overrides=(
            '[match]\nroles = ["teacher"]\n\n[workspace]\nsession_command = '
            f'"staffroom-session"\nallowed_hosts = ["127.0.0.1:{port}"]\n'
            f'home_url = "http://127.0.0.1:{port}/"\n'))
        print("- a CIO issues teacher t.sato a key on a SoftHSM2 token…")
        teacher = world.add_teacher("t.sato")
        conf = definitions(root)
        print("- the teacher's agent checks posture, signs in with the key and connects…")
        env = {**os.environ, "SOFTHSM2_CONF": str(teacher.token.conf),  # type: ignore
               "STAFFROOM_FRESHCLAM_CONF": str(conf), "STAFFROOM_HOME": str(root / "home-t")}
        agent = subprocess.Popen([STAFFROOM, *world.connect_args(teacher)], env=env,
                                 stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        assert agent.stdout is not None
        url = ""
        for line in agent.stdout:
            if line.startswith("Viewer: "):
                url = line.removeprefix("Viewer: ").strip()
                break
        if not url:
            print("The agent did not connect; see the messages above.")
            return 1
        gw = world.gateway
        print()
        print(f"Gateway:        {gw.url}   (CA: {gw.ca})")
        print("Administrator:  admin / admin-password-2026 + the code of the authenticator "
              f"enrolled with\n                {gw.totp_uri}")
        print("Teacher:        t.sato / teacher-password-1 (key on SoftHSM2 token "
              f"{teacher.token.label})")  # type: ignore[attr-defined]
        print(f"Viewer: {url}")
        print()
        print("Open the viewer URL in a browser on this machine (e.g. `chromium URL`). Try, as "
              "the admin:")
        print(f"  STAFFROOM_HOME={root}/home-admin {STAFFROOM} sessions list")
        print(f"  STAFFROOM_HOME={root}/home-admin {STAFFROOM} audit tail")
        print(f"  STAFFROOM_HOME={root}/home-admin {STAFFROOM} workspaces stop t.sato "
              "--reason 'demo reset'")
        print("Ctrl+C stops everything.")
        while agent.poll() is None:
            time.sleep(1)
        print("The agent ended the session; see its message above.")
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl+C (or a wrapper's SIGTERM) must not cut the stop short: it would leave
        # the gateway and the teacher's desktop running with nobody to stop them.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nStopping…", flush=True)
        if agent is not None and agent.poll() is None:
            agent.terminate()
            try:
                agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                agent.kill()
        if world is not None:
            stop_gateway(world.gateway)
        print(f"Stopped. The demo's data stays in {root} (audit log, state, CA).", flush=True)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
