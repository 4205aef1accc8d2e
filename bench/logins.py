"""Logins under abuse, measured: `python -m bench.logins [--storm-seconds 30] [--rate 200]
[--idle 1000] [--out F.json]`.

Starts a fresh gateway (`staffroom init` + `staffroom gateway` on a free port, in a temporary
directory) and measures, from this process:
1. password checks: 400 wrong logins, each for its own account from its own loopback address
   (127.0.2.x, so no throttle applies and every one runs argon2id in the pool), 32 at a time —
   checks per second and the latency of each answer (p50/p99);
2. the storm: `--rate` bad logins a second for `--storm-seconds` from two addresses — the answers
   per second, their latency (p50/p99), how many were 429, and /api/v1/health timed from a
   separate thread over a kept-alive connection every 250 ms;
3. idle connections: the gateway's RSS and open descriptors before and after `--idle` TLS
   connections that complete the handshake and then say nothing (from 20 addresses).
Everything it started is stopped at the end. Numbers go to docs/PERFORMANCE.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench.desktop import free_port, wait_for_port

STAFFROOM = str(Path(sys.executable).with_name("staffroom"))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def checks(url: str, ctx: ssl.SSLContext, n: int = 400, parallel: int = 32
                 ) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    queue = list(range(n))

    async def worker() -> None:
        while queue:
            i = queue.pop()
            address = f"127.0.{2 + i // 250}.{1 + i % 250}"
            connector = aiohttp.TCPConnector(local_addr=(address, 0))
            async with aiohttp.ClientSession(connector=connector) as http:
                started = time.monotonic()
                # Unknown ids cost the same work as real ones (no oracle), and each its own
                # account, so no throttle applies.
                async with http.post(url + "/api/v1/login", ssl=ctx, json={
                        "user": f"nobody{i}", "password": "wrong-password-1",
                        "totp": "123456"}) as r:
                    await r.read()
                latencies.append(time.monotonic() - started)
                statuses[r.status] += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    wall = time.monotonic() - started
    return {"attempts": n, "parallel": parallel, "checks_per_second": round(n / wall, 1),
            "p50_ms": round(pct(latencies, 0.5) * 1000, 1),
            "p99_ms": round(pct(latencies, 0.99) * 1000, 1), "statuses": dict(statuses)}


def health_probe(port: int, ca: str, seconds: float, out: list[float]) -> None:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                       context=ssl.create_default_context(cafile=ca))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        conn.request("GET", "/api/v1/health")
        conn.getresponse().read()
        out.append(time.monotonic() - started)
        time.sleep(0.25)


async def storm(url: str, ctx: ssl.SSLContext, rate: int, seconds: float, tasks: int = 40
                ) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    end = time.monotonic() + seconds
    every = tasks / rate

    async def one(n: int, http: aiohttp.ClientSession) -> None:
        next_at = time.monotonic() + n * every / tasks
        body = {"user": "admin" if n % 2 else f"guess{n}", "password": "hunter2-hunter2",
                "totp": "123456"}
        while (now := time.monotonic()) < end:
            await asyncio.sleep(max(0.0, next_at - now))
            next_at += every
            started = time.monotonic()
            try:
                async with http.post(url + "/api/v1/login", ssl=ctx, json=body) as r:
                    await r.read()
                    statuses[r.status] += 1
            except aiohttp.ClientError:
                statuses[0] += 1
            latencies.append(time.monotonic() - started)

    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        local_addr=(a, 0), limit=tasks // 2)) for a in ("127.0.0.3", "127.0.0.4")]
    try:
        await asyncio.gather(*(one(n, sessions[n % 2]) for n in range(tasks)))
    finally:
        for s in sessions:
            await s.close()
    total = sum(statuses.values())
    return {"rate_asked": rate, "seconds": seconds, "answers_per_second":
            round(total / seconds, 1), "p50_ms": round(pct(latencies, 0.5) * 1000, 1),
            "p99_ms": round(pct(latencies, 0.99) * 1000, 1), "statuses": dict(statuses)}


async def idle(port: int, ctx: ssl.SSLContext, pid: int, n: int) -> dict[str, Any]:
    before_rss, before_fds = rss_kib(pid), len(os.listdir(f"/proc/{pid}/fd"))
    writers: list[asyncio.StreamWriter] = []

    async def group(address: str, k: int) -> None:
        for _ in range(k):
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                _, w = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1",
                    local_addr=(address, 0)), 10)
                writers.append(w)

    await asyncio.gather(*(group(f"127.0.1.{i}", n // 20) for i in range(20)))
    await asyncio.sleep(1)
    after_rss, after_fds = rss_kib(pid), len(os.listdir(f"/proc/{pid}/fd"))
    held = after_fds - before_fds
    for w in writers:
        w.close()
    return {"opened": len(writers), "held_by_gateway": held, "rss_before_mib":
            round(before_rss / 1024, 1), "rss_after_mib": round(after_rss / 1024, 1),
            "kib_per_held_connection": round((after_rss - before_rss) / max(held, 1), 1)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="staffroom-bench-logins-"))
    port = free_port()
    info = json.loads(subprocess.run(
        [STAFFROOM, "init", str(root / "data"), "--hostname", "127.0.0.1", "--listen",
         f"127.0.0.1:{port}", "--json"], capture_output=True, text=True, check=True).stdout)
    log = (root / "gateway.log").open("wb")
    gw = subprocess.Popen([STAFFROOM, "gateway", "--data", str(root / "data")], stdout=log,
                          stderr=log, start_new_session=True)
    try:
        wait_for_port(port, 30)
        url, ca = f"https://127.0.0.1:{port}", info["ca_cert"]
        ctx = ssl.create_default_context(cafile=ca)
        result: dict[str, Any] = {"password_checks": await checks(url, ctx)}
        await asyncio.sleep(2)
        health: list[float] = []
        probe = threading.Thread(target=health_probe,
                                 args=(port, ca, args.storm_seconds, health))
        probe.start()
        result["storm"] = await storm(url, ctx, args.rate, args.storm_seconds)
        probe.join()
        result["storm"]["health_p50_ms"] = round(pct(health, 0.5) * 1000, 1)
        result["storm"]["health_p99_ms"] = round(pct(health, 0.99) * 1000, 1)
        result["storm"]["health_max_ms"] = round(max(health) * 1000, 1)
        result["storm"]["gateway_rss_mib"] = round(rss_kib(gw.pid) / 1024, 1)
        result["idle"] = await idle(port, ctx, gw.pid, args.idle)
        result["cpus"] = os.cpu_count()
        result["loadavg"] = os.getloadavg()
        return result
    finally:
        gw.terminate()
        try:
            gw.wait(10)
        except subprocess.TimeoutExpired:
            gw.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--storm-seconds", type=float, default=30)
    p.add_argument("--rate", type=int, default=200)
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--out")
    args = p.parse_args()
    result = asyncio.run(main_async(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
