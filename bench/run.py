"""Staffroom vs noVNC benchmark: `python -m bench.run [--duration S] [--workloads ...] [--out F]`.

One Xvnc desktop, one Chromium; each client in turn connects and sees every workload; results go
to a JSON file and a Markdown table next to it. With ``--staffroom-desktop as-shipped`` the
Staffroom clients watch a second desktop started with the flags the gateway gives teachers'
desktops (gateway.workspace.desktop.FRAME_RATE) while noVNC keeps TigerVNC's defaults: the
comparison a board makes between the two products as each is deployed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import subprocess
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from bench.clients import Client, display_path_of, load_client
from bench.desktop import (
    AS_SHIPPED,
    Desktop,
    add_animations_option,
    add_pointer_option,
    add_staffroom_desktop_option,
    with_animations,
)
from bench.drag_input import hand_pointer_to_page
from bench.measure import (
    INIT_SCRIPT,
    MachineLoad,
    ProcSampler,
    WebSocketCounter,
    page_counters,
    summarize_latency,
    wait_until_quiet,
)
from bench.report import markdown, ratios
from bench.workloads import WORKLOADS, Workload, probe_key_latency
from gateway.display import SOURCES_BECAUSE, compiled
from gateway.workspace.desktop import FRAME_RATE

log = logging.getLogger("bench")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RESULTS_DIR = Path(__file__).parent / "results"
DEFAULT_CLIENTS = ("novnc", "staffroom", "staffroom-nowm")
MiB = 1024 * 1024


async def measure_workload(desktop: Desktop, client: Client, page: Page, counter: WebSocketCounter,
                           workload: Workload, duration: float, pointer_in_page: bool = True
                           ) -> dict[str, Any]:
    await workload.setup(desktop)
    try:
        if pointer_in_page:
            await hand_pointer_to_page(page, client.name, await desktop.pointer())
        if not await wait_until_quiet(page, quiet=1.0, deadline=15):  # setup is not measured
            log.warning("%s: screen still changing before %s", client.name, workload.name)
        gateway = ProcSampler(client.gateway_pids())
        xvnc = ProcSampler([desktop.xvnc_pid])
        machine = MachineLoad()
        before, rx0, tx0 = await page_counters(page), counter.received, counter.sent
        msgs0 = counter.frames_received
        machine.start()
        gateway.start()
        xvnc.start()
        attach = getattr(workload, "attach", None)
        if attach is not None:  # driven through the page (window-drag-page)
            attach(page, client.name)
        t0 = time.monotonic()
        await workload.run(desktop, duration)
        elapsed = time.monotonic() - t0
        gw_cpu, xvnc_cpu = await gateway.stop(), await xvnc.stop()
        load = machine.stop()
        after = await page_counters(page)
    finally:
        await workload.teardown(desktop)
    rx = counter.received - rx0
    return {
        "client": client.name, "workload": workload.name, "seconds": round(elapsed, 2),
        "bytes_received": rx, "bytes_sent": counter.sent - tx0,
        "kbit_per_s": round(rx * 8 / 1000 / elapsed, 1),
        "updates_per_s": round((after.frames - before.frames) / elapsed, 2),
        # WebSocket messages the page received: for Staffroom one per frame the gateway sent
        # (plus the odd notice); the updates above count animation frames drawn in instead.
        "messages_per_s": round((counter.frames_received - msgs0) / elapsed, 2),
        "draw_calls": after.draws - before.draws,
        "gateway_cpu_s": round(gw_cpu, 3), "gateway_cpu_pct": round(100 * gw_cpu / elapsed, 2),
        "gateway_peak_rss_mib": round(gateway.peak_rss / MiB, 1),
        "gateway_peak_pss_mib": round(gateway.peak_pss / MiB, 1),
        "xvnc_cpu_s": round(xvnc_cpu, 3),
        "latency": None,
        "machine": load,
    }


async def open_client_page(browser: Browser, client: Client
                           ) -> tuple[BrowserContext, Page, WebSocketCounter]:
    """A fresh 1920x1080 browser context with the counters installed, showing the client's page."""
    # bypass_csp: the harness's own probes (wait_for_function) evaluate strings, which the
    # Staffroom viewer's strict CSP forbids; page scripts are unaffected.
    context = await browser.new_context(viewport={"width": 1920, "height": 1080},
                                        bypass_csp=True)
    try:
        page = await context.new_page()
        await page.add_init_script(INIT_SCRIPT)
        counter = WebSocketCounter()
        await counter.attach(page)
        log.info("%s: opening %s", client.name, client.public_url)
        await page.goto(client.page_url)
        await client.wait_ready(page)
        return context, page, counter
    except BaseException:
        await context.close()
        raise


async def run_client(browser: Browser, desktop: Desktop, client: Client,
                     workloads: list[Workload], args: argparse.Namespace) -> list[dict[str, Any]]:
    await client.start(desktop)
    context = None
    try:
        context, page, counter = await open_client_page(browser, client)
        rows = []
        probe_after = probe_workload([wl.name for wl in workloads])
        for wl in workloads:
            log.info("%s: %s for %.0f s", client.name, wl.name, args.duration)
            rows.append(await measure_workload(desktop, client, page, counter, wl, args.duration,
                                               not args.desktop_pointer))
            rows[-1]["display_path"] = getattr(client, "display_path", None)
            if wl.name == probe_after and args.keys > 0:
                lat, missed, tail = await probe_key_latency(desktop, page, client.focus_input,
                                                            args.keys)
                rows[-1]["latency"] = asdict(summarize_latency(lat, missed, tail))
        return rows
    finally:
        if context is not None:
            await context.close()
        await client.stop()


def probe_workload(names: list[str]) -> str | None:
    """The row the key-latency probe (an xterm) belongs to: xterm-typing, else typing."""
    return next((n for n in ("xterm-typing", "typing") if n in names), None)


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


async def main(args: argparse.Namespace) -> Path:
    clients = [load_client(c) for c in args.clients]
    workloads = [WORKLOADS[w]() for w in args.workloads]
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    desktop = Desktop(with_animations(None, args.desktop_animations))
    shipped = Desktop(with_animations(AS_SHIPPED, args.desktop_animations)) \
        if args.staffroom_desktop == "as-shipped" else desktop
    rows: list[dict[str, Any]] = []
    load_start = os.getloadavg()
    try:
        desktop.start()
        if shipped is not desktop:
            shipped.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for client in clients:
                    on = shipped if client.name.startswith("staffroom") else desktop
                    rows += await run_client(browser, on, client, workloads, args)
                chromium = browser.version
            finally:
                await browser.close()
    finally:
        desktop.stop()
        if shipped is not desktop:
            shipped.stop()
    c = desktop.config
    result = {
        "meta": {"started": started, "duration_s": args.duration, "keys": args.keys,
                 "geometry": f"{c.width}x{c.height}x{c.depth}", "cpus": _cpus(),
                 "host": platform.platform(), "chromium": chromium,
                 "display_path": display_path_of(compiled.describe(SOURCES_BECAUSE)[1],
                                                 [r.get("display_path") for r in rows]),
                 "xvnc": _version(["Xvnc", "-version"]),
                 "websockify": _version(["dpkg-query", "-W", "-f", "${Version}", "websockify"]),
                 "novnc": _version(["dpkg-query", "-W", "-f", "${Version}", "novnc"]) +
                          " (Debian), vnc_lite.html, default encodings "
                          "(CopyRect Tight TightPNG Hextile RRE Raw, quality 6, compression 2)",
                 "clients": [cl.name for cl in clients], "workloads": args.workloads,
                 "client_notes": {"staffroom": "default policy (watermark on)",
                                  "staffroom-nowm": "watermark off by a policy file matching "
                                                    "the bench teachers",
                                  "staffroom-lossy": 'display.quality = "lossy" by a policy '
                                                     "file matching the bench teachers",
                                  "staffroom-unpaced": "display.max_frame_rate = 0 by a "
                                                         "policy file matching the bench "
                                                         "teachers"},
                 "staffroom_desktop": (f"Staffroom's own desktop, Xvnc -FrameRate {FRAME_RATE} "
                                       "as the gateway starts teachers' desktops; noVNC's at "
                                       "TigerVNC's default (60)")
                                      if shipped is not desktop else "shared with noVNC",
                 "desktop_animations": args.desktop_animations,
                 "pointer_in_page": not args.desktop_pointer,
                 "loadavg_start": [round(x, 2) for x in load_start],
                 "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "results": rows,
        "ratios": {cl.name: ratios(rows, cl.name) for cl in clients if cl.name != "novnc"},
    }
    out = Path(args.out) if args.out else RESULTS_DIR / f"{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    return out


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--duration", type=float, default=25.0, help="seconds per workload (25)")
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--clients", nargs="+", default=list(DEFAULT_CLIENTS),
                   help="novnc, staffroom, staffroom-nowm, staffroom-lossy, staffroom-unpaced or "
                        "module:Class "
                        "(default: all three; noVNC first, the others as ratios to it)")
    p.add_argument("--keys", type=int, default=40, help="keys for the latency probe (40)")
    add_staffroom_desktop_option(p)
    add_animations_option(p)
    add_pointer_option(p)
    p.add_argument("--out", help="JSON path (default bench/results/<time>.json); .md next to it")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    out = asyncio.run(main(args))
    print(f"results: {out}\ntable:   {out.with_suffix('.md')}")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    cli()
