"""How many concurrent office sessions one core carries: `python -m bench.capacity`.

Plan: connect N viewer pages (default 1) through one client's gateway to the shared desktop (for
Staffroom: N teachers, each with their own token, agent and session on one gateway), run
the office mix (typing, then scrolling, `--duration` seconds each), and read the gateway's CPU
seconds over the mix from /proc. Then

    cpu_per_session = gateway CPU seconds / wall seconds / N      (cores one session keeps busy)
    sessions_per_core = 1 / cpu_per_session

Xvnc's CPU is reported beside it ("with desktop"), because with noVNC the encoding happens in
Xvnc while Staffroom's gateway re-encodes itself. Caveats: the N pages share one desktop (a real
school gives each teacher their own), and Chromium runs on the same cores, so at large N the
gateway competes with its viewers; compare N=1 and N=4 to check the figure scales linearly
(`--sessions 1 4` runs both and derives the memory each extra session costs from the difference
of the gateway's PSS/RSS).

Each run also records the frames each page drew per second in each part of the mix
(``updates_per_s_per_session``): a busy machine coalesces the desktop's updates into fewer
frames, each session then costs less CPU, so sessions per core is only comparable between runs
at similar frame rates.
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
from bench.measure import INIT_SCRIPT, MachineLoad, ProcSampler, page_counters, wait_until_quiet
from bench.report import capacity_table, capacity_versus, capacity_versus_table
from bench.run import CHROMIUM, CHROMIUM_ARGS, RESULTS_DIR
from bench.workloads import Scrolling, Typing, Workload
from gateway.display import SOURCES_BECAUSE, compiled

log = logging.getLogger("bench.capacity")
MiB = 1024 * 1024


async def open_pages(browser: Browser, client: Client, sessions: int
                     ) -> tuple[list[BrowserContext], list[Page]]:
    """One browser context per session. A client with ``page_urls`` (Staffroom: one agent per
    teacher) gets one page per URL; otherwise every page opens the same ``page_url`` (noVNC)."""
    urls = getattr(client, "page_urls", None) or [client.page_url] * sessions
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    for url in urls[:sessions]:
        context = await browser.new_context(viewport={"width": 1920, "height": 1080},
                                            bypass_csp=True)
        contexts.append(context)
        page = await context.new_page()
        await page.add_init_script(INIT_SCRIPT)  # the draw counters wait_until_quiet reads
        await page.goto(url)
        await client.wait_ready(page)
        pages.append(page)
    return contexts, pages


async def measure(client_spec: str, sessions: int, duration: float,
                  staffroom_desktop: str = "shared", mix: list[Workload] | None = None,
                  animations: bool = False, pointer_in_page: bool = True) -> dict[str, Any]:
    """One run of ``mix`` (default: the office mix, typing then scrolling); the result's
    ``windows`` gives each workload's wall-clock span (time.time), for tools that read the
    gateway's own figures over the same windows (bench.stage_cpu)."""
    client = load_client(client_spec)
    if hasattr(client, "sessions"):
        client.sessions = sessions  # type: ignore[attr-defined]
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    # as-shipped: a Staffroom client's desktop has the gateway's own Xvnc flags (bench.run).
    shipped = staffroom_desktop == "as-shipped" and client.name.startswith("staffroom")
    desktop = Desktop(with_animations(AS_SHIPPED if shipped else None, animations))
    contexts: list[BrowserContext] = []
    mix = mix if mix is not None else [Typing(), Scrolling()]
    machine = MachineLoad()
    load: dict[str, Any] = {}
    try:
        desktop.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            await client.start(desktop)
            try:
                contexts, pages = await open_pages(browser, client, sessions)
                # Memory with every session attached and idle (key frames sent), then peaks.
                await wait_until_quiet(pages[-1], quiet=1.0, deadline=15)
                idle = ProcSampler(client.gateway_pids())
                idle.start()
                await idle.stop()
                gateway = ProcSampler(client.gateway_pids())
                xvnc = ProcSampler([desktop.xvnc_pid])
                wall = gw_cpu = xvnc_cpu = 0.0
                updates: dict[str, float] = {}  # per workload: frames drawn per second per page
                windows: dict[str, tuple[float, float]] = {}  # per workload: wall start, end
                by_workload: dict[str, float] = {}  # per workload: gateway core-s/s per session
                machine.start()
                for wl in mix:
                    await wl.setup(desktop)
                    try:
                        if pointer_in_page:  # as a teacher's hand rests on it (bench.run)
                            pointer = await desktop.pointer()
                            for page in pages:
                                await hand_pointer_to_page(page, client.name, pointer)
                        await wait_until_quiet(pages[0], quiet=1.0, deadline=15)
                        gateway.start()
                        xvnc.start()
                        before = [await page_counters(p) for p in pages]
                        t0, wall_t0 = time.monotonic(), time.time()
                        log.info("%s x%d: %s for %.0f s", client.name, sessions, wl.name, duration)
                        await wl.run(desktop, duration)
                        elapsed = time.monotonic() - t0
                        windows[wl.name] = (wall_t0, time.time())
                        wall += elapsed
                        after = [await page_counters(p) for p in pages]
                        drawn = sum(a.frames - b.frames for a, b in zip(after, before, strict=True))
                        updates[wl.name] = round(drawn / len(pages) / elapsed, 2)
                        part = await gateway.stop()
                        gw_cpu += part
                        by_workload[wl.name] = round(part / elapsed / sessions, 5)
                        xvnc_cpu += await xvnc.stop()
                    finally:
                        await wl.teardown(desktop)
                load = machine.stop()
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
        "started": started, "display_path": getattr(client, "display_path", None),
        "xvnc_frame_rate": desktop.config.frame_rate or 60,
        "desktop_animations": desktop.config.animations,
        "pointer_in_page": pointer_in_page,
        "wall_s": round(wall, 2), "gateway_cpu_s": round(gw_cpu, 3),
        "xvnc_cpu_s": round(xvnc_cpu, 3),
        "gateway_idle_rss_mib": round(idle.peak_rss / MiB, 1),
        "gateway_idle_pss_mib": round(idle.peak_pss / MiB, 1),
        "gateway_peak_rss_mib": round(gateway.peak_rss / MiB, 1),
        "gateway_peak_pss_mib": round(gateway.peak_pss / MiB, 1),
        # The frames each page drew: a busier machine coalesces more, and then each session
        # costs less CPU; read sessions per core beside the frame rate it was measured at.
        "updates_per_s_per_session": updates,
        "windows": windows,
        # Per part of the mix, the cores one session kept the gateway busy (typing's is the
        # per-message overhead, scrolling's the display path's).
        "cpu_per_session_by_workload": by_workload,
        "cpu_per_session": round(per_session, 5),
        "sessions_per_core": round(1 / per_session, 1) if per_session else None,
        "cpu_per_session_with_desktop": round(with_desktop, 5),
        "sessions_per_core_with_desktop": round(1 / with_desktop, 1) if with_desktop else None,
        "machine": load,
    }


def per_session_memory(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """MiB each extra session adds: the slope of peak PSS (and RSS) between the smallest and the
    largest N, so the interpreter's own baseline (imports, pools) cancels out."""
    if len(runs) < 2:
        return None
    a, b = min(runs, key=lambda r: r["sessions"]), max(runs, key=lambda r: r["sessions"])
    n = b["sessions"] - a["sessions"]
    if n <= 0:
        return None
    return {"from_sessions": a["sessions"], "to_sessions": b["sessions"],
            **{f"mib_per_session_{k}": round((b[f"gateway_{k}_mib"] - a[f"gateway_{k}_mib"]) / n,
                                             1)
               for k in ("idle_rss", "idle_pss", "peak_rss", "peak_pss")}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", nargs="+", default=["novnc"],
                   help="novnc, staffroom, staffroom-nowm (watermark off) or module:Class; "
                        "several (e.g. novnc staffroom) run one after the other, and each is "
                        "then also given as a ratio to the first, measured in the same run")
    p.add_argument("--rounds", type=int, default=1,
                   help="times to run every client, alternating (the machine's load moves "
                        "between runs; the ratios use each client's mean)")
    p.add_argument("--sessions", type=int, nargs="+", default=[1],
                   help="concurrent sessions; several values (e.g. 1 4) run one after the other "
                        "and give the memory each extra session costs")
    p.add_argument("--duration", type=float, default=25.0, help="seconds per mix part (25)")
    add_staffroom_desktop_option(p)
    add_animations_option(p)
    add_pointer_option(p)
    p.add_argument("--out", help="JSON path (default bench/results/capacity-<client>-<time>.json)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    runs = [asyncio.run(measure(client, n, args.duration, args.staffroom_desktop,
                                animations=args.desktop_animations,
                                pointer_in_page=not args.desktop_pointer))
            for _ in range(args.rounds) for client in args.client for n in args.sessions]
    names = list(dict.fromkeys(r["client"] for r in runs))
    # One client: its memory figures as before; several: per client name.
    memory = per_session_memory(runs) if len(names) == 1 else \
        {name: per_session_memory([r for r in runs if r["client"] == name]) for name in names}
    result = {"runs": runs, "memory": memory,
              "versus": capacity_versus(runs) if len(names) > 1 else [],
              "display_path": display_path_of(compiled.describe(SOURCES_BECAUSE)[1],
                                              [r.get("display_path") for r in runs]),
              "finished": datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")}
    out = Path(args.out) if args.out else \
        RESULTS_DIR / f"capacity-{runs[0]['client']}-{runs[0]['started']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out}")
    for r in runs:
        print(f"{r['client']} x{r['sessions']}: {r['cpu_per_session']:.4f} core-s/s per session "
              f"-> {r['sessions_per_core']} sessions/core (gateway only); "
              f"{r['sessions_per_core_with_desktop']} with the desktop's Xvnc; gateway RSS "
              f"{r['gateway_idle_rss_mib']} MiB idle, {r['gateway_peak_rss_mib']} MiB peak")
    if memory and ("from_sessions" in memory or any(memory.values())):
        print("per extra session:", memory)
    print()
    print(capacity_table([result]))
    if result["versus"]:
        print()
        print(capacity_versus_table(result["versus"]))


if __name__ == "__main__":
    main()
