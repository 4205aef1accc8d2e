"""How many concurrent office sessions one core carries: `python -m bench.capacity`.

Plan: connect N viewer pages (default 1) through one client's gateway to the shared desktop, run
the office mix (typing, then scrolling, `--duration` seconds each), and read the gateway's CPU
seconds over the mix from /proc. Then

    cpu_per_session = gateway CPU seconds / wall seconds / N      (cores one session keeps busy)
    sessions_per_core = 1 / cpu_per_session

Xvnc's CPU is reported beside it ("with desktop"), because with noVNC the encoding happens in
Xvnc while Staffroom's gateway re-encodes itself. Caveats: the N pages share one desktop (a real
school gives each teacher their own), and Chromium runs on the same cores, so at large N the
gateway competes with its viewers; compare N=1 and N=4 to check the figure scales linearly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, async_playwright

from bench.clients import load_client
from bench.desktop import Desktop
from bench.measure import ProcSampler, wait_until_quiet
from bench.run import CHROMIUM, CHROMIUM_ARGS, RESULTS_DIR, open_client_page
from bench.workloads import Scrolling, Typing, Workload

log = logging.getLogger("bench.capacity")


async def measure(client_spec: str, sessions: int, duration: float) -> dict[str, Any]:
    client = load_client(client_spec)
    desktop = Desktop()
    contexts: list[BrowserContext] = []
    try:
        desktop.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            await client.start(desktop)
            try:
                pages = []
                for _ in range(sessions):
                    context, page, _counter = await open_client_page(browser, client)
                    contexts.append(context)
                    pages.append(page)
                mix: list[Workload] = [Typing(), Scrolling()]
                gateway = ProcSampler(client.gateway_pids())
                xvnc = ProcSampler([desktop.xvnc_pid])
                wall = gw_cpu = xvnc_cpu = 0.0
                for wl in mix:
                    await wl.setup(desktop)
                    try:
                        await wait_until_quiet(pages[0], quiet=1.0, deadline=15)
                        gateway.start()
                        xvnc.start()
                        t0 = time.monotonic()
                        log.info("%s x%d: %s for %.0f s", client.name, sessions, wl.name, duration)
                        await wl.run(desktop, duration)
                        wall += time.monotonic() - t0
                        gw_cpu += await gateway.stop()
                        xvnc_cpu += await xvnc.stop()
                    finally:
                        await wl.teardown(desktop)
            finally:
                for context in contexts:
                    await context.close()
                await client.stop()
                await browser.close()
    finally:
        desktop.stop()
    per_session = gw_cpu / wall / sessions
    with_desktop = (gw_cpu + xvnc_cpu) / wall / sessions
    return {
        "client": client.name, "sessions": sessions, "mix": [w.name for w in mix],
        "wall_s": round(wall, 2), "gateway_cpu_s": round(gw_cpu, 3),
        "xvnc_cpu_s": round(xvnc_cpu, 3),
        "gateway_peak_rss_mib": round(gateway.peak_rss / 2**20, 1),
        "cpu_per_session": round(per_session, 5),
        "sessions_per_core": round(1 / per_session, 1) if per_session else None,
        "cpu_per_session_with_desktop": round(with_desktop, 5),
        "sessions_per_core_with_desktop": round(1 / with_desktop, 1) if with_desktop else None,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", default="novnc", help="novnc, staffroom or module:Class")
    p.add_argument("--sessions", type=int, default=1, help="concurrent viewer pages (1)")
    p.add_argument("--duration", type=float, default=25.0, help="seconds per mix part (25)")
    p.add_argument("--out", help="JSON path (default bench/results/capacity-<time>.json)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result = asyncio.run(measure(args.client, args.sessions, args.duration))
    result["finished"] = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    out = Path(args.out) if args.out else RESULTS_DIR / f"capacity-{result['started']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out}")
    print(f"{result['client']}: {result['cpu_per_session']:.4f} core-s/s per session -> "
          f"{result['sessions_per_core']} sessions/core (gateway only); "
          f"{result['sessions_per_core_with_desktop']} with the desktop's Xvnc")


if __name__ == "__main__":
    main()
