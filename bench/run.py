"""Staffroom vs noVNC benchmark: `python -m bench.run [--duration S] [--workloads ...] [--out F]`.

One Xvnc desktop, one Chromium; each client in turn connects and sees every workload; results go
to a JSON file and a Markdown table next to it.
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

from bench.clients import Client, load_client
from bench.desktop import Desktop
from bench.measure import (
    INIT_SCRIPT,
    ProcSampler,
    WebSocketCounter,
    page_counters,
    summarize_latency,
    wait_until_quiet,
)
from bench.workloads import WORKLOADS, Workload, probe_key_latency

log = logging.getLogger("bench")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RESULTS_DIR = Path(__file__).parent / "results"
MiB = 1024 * 1024


async def measure_workload(desktop: Desktop, client: Client, page: Page, counter: WebSocketCounter,
                           workload: Workload, duration: float) -> dict[str, Any]:
    await workload.setup(desktop)
    try:
        if not await wait_until_quiet(page, quiet=1.0, deadline=15):  # setup is not measured
            log.warning("%s: screen still changing before %s", client.name, workload.name)
        gateway = ProcSampler(client.gateway_pids())
        xvnc = ProcSampler([desktop.xvnc_pid])
        before, rx0, tx0 = await page_counters(page), counter.received, counter.sent
        gateway.start()
        xvnc.start()
        t0 = time.monotonic()
        await workload.run(desktop, duration)
        elapsed = time.monotonic() - t0
        gw_cpu, xvnc_cpu = await gateway.stop(), await xvnc.stop()
        after = await page_counters(page)
    finally:
        await workload.teardown(desktop)
    rx = counter.received - rx0
    return {
        "client": client.name, "workload": workload.name, "seconds": round(elapsed, 2),
        "bytes_received": rx, "bytes_sent": counter.sent - tx0,
        "kbit_per_s": round(rx * 8 / 1000 / elapsed, 1),
        "updates_per_s": round((after.frames - before.frames) / elapsed, 2),
        "draw_calls": after.draws - before.draws,
        "gateway_cpu_s": round(gw_cpu, 3), "gateway_cpu_pct": round(100 * gw_cpu / elapsed, 2),
        "gateway_peak_rss_mib": round(gateway.peak_rss / MiB, 1),
        "gateway_peak_pss_mib": round(gateway.peak_pss / MiB, 1),
        "xvnc_cpu_s": round(xvnc_cpu, 3),
        "latency": None,
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
        for wl in workloads:
            log.info("%s: %s for %.0f s", client.name, wl.name, args.duration)
            rows.append(await measure_workload(desktop, client, page, counter, wl, args.duration))
            if wl.name == "typing" and args.keys > 0:
                lat, missed = await probe_key_latency(desktop, page, client.focus_input, args.keys)
                rows[-1]["latency"] = asdict(summarize_latency(lat, missed))
        return rows
    finally:
        if context is not None:
            await context.close()
        await client.stop()


def ratios(rows: list[dict[str, Any]], ours: str, theirs: str) -> list[dict[str, Any]]:
    """ours/theirs per workload and metric (a ratio below 1 means Staffroom used less)."""
    by = {(r["client"], r["workload"]): r for r in rows}
    out = []
    for (client, workload), a in by.items():
        b = by.get((theirs, workload))
        if client != ours or b is None:
            continue
        entry: dict[str, Any] = {"workload": workload}
        pairs = [(k, a[k], b[k]) for k in ("bytes_received", "updates_per_s", "gateway_cpu_s",
                                           "gateway_peak_rss_mib", "gateway_peak_pss_mib")]
        if a["latency"] and b["latency"]:
            pairs += [(f"latency_{k}", a["latency"][k], b["latency"][k])
                      for k in ("median_ms", "p95_ms")]
        for key, x, y in pairs:
            entry[key] = round(x / y, 3) if x is not None and y else None
        out.append(entry)
    return out


def markdown(result: dict[str, Any]) -> str:
    m = result["meta"]
    lines = [f"# Benchmark {m['started']}", "",
             f"Desktop {m['geometry']} Xvnc ({m['xvnc']}), Chromium {m['chromium']}, "
             f"{m['duration_s']} s per workload, {m['cpus']} CPUs.", "",
             "| workload | client | MB received | kbit/s | updates/s | latency median ms | "
             "latency p95 ms | gateway CPU s | gateway CPU % | gateway peak RSS MiB | "
             "gateway peak PSS MiB | Xvnc CPU s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["results"]:
        lat = r["latency"] or {}
        lines.append(
            f"| {r['workload']} | {r['client']} | {r['bytes_received'] / 1e6:.2f} | "
            f"{r['kbit_per_s']:.0f} | {r['updates_per_s']:.1f} | {_fmt(lat.get('median_ms'))} | "
            f"{_fmt(lat.get('p95_ms'))} | {r['gateway_cpu_s']:.2f} | {r['gateway_cpu_pct']:.1f} | "
            f"{r['gateway_peak_rss_mib']:.1f} | {r['gateway_peak_pss_mib']:.1f} | "
            f"{r['xvnc_cpu_s']:.2f} |")
    if result["ratios"]:
        keys = [k for k in result["ratios"][0] if k != "workload"]
        lines += ["", "Ratios staffroom / novnc:", "", "| workload | " + " | ".join(keys) + " |",
                  "|---|" + "---:|" * len(keys)]
        lines += ["| " + " | ".join([r["workload"], *(_fmt(r.get(k)) for k in keys)]) + " |"
                  for r in result["ratios"]]
    return "\n".join(lines) + "\n"


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)


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
    desktop = Desktop()
    rows: list[dict[str, Any]] = []
    try:
        desktop.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for client in clients:
                    rows += await run_client(browser, desktop, client, workloads, args)
                chromium = browser.version
            finally:
                await browser.close()
    finally:
        desktop.stop()
    c = desktop.config
    result = {
        "meta": {"started": started, "duration_s": args.duration, "keys": args.keys,
                 "geometry": f"{c.width}x{c.height}x{c.depth}", "cpus": _cpus(),
                 "host": platform.platform(), "chromium": chromium,
                 "xvnc": _version(["Xvnc", "-version"]),
                 "websockify": _version(["dpkg-query", "-W", "-f", "${Version}", "websockify"]),
                 "novnc": _version(["dpkg-query", "-W", "-f", "${Version}", "novnc"]) +
                          " (Debian), vnc_lite.html, default encodings "
                          "(CopyRect Tight TightPNG Hextile RRE Raw, quality 6, compression 2)",
                 "clients": [cl.name for cl in clients], "workloads": args.workloads},
        "results": rows,
        "ratios": ratios(rows, "staffroom", "novnc"),
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
    p.add_argument("--clients", nargs="+", default=["novnc"],
                   help="novnc, staffroom or module:Class (default: novnc)")
    p.add_argument("--keys", type=int, default=40, help="keys for the latency probe (40)")
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
