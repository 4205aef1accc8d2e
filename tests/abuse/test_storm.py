"""A login storm and a pile of idle connections against a real gateway, while a teacher types
in a live session on a real Xvnc desktop: 200 bad logins a second for 30 s (STAFFROOM_STORM_SECONDS
to change it) from many tasks on two addresses — 429s with Retry-After appear, /api/v1/health
answers within 200 ms, the teacher's frames keep flowing, the audit log grows by a bounded
number of records; 1,000 idle TLS connections do not stop a new login; an idle connection, a
request trickled a byte at a time and a silent or oversized login handshake are cut off."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import sys
import time
from collections import Counter
from collections.abc import Iterator

import aiohttp
import pyotp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.abuse.helpers import POLICY, Typist, api, teacher_key, tls, tunnel
from tests.fixtures.gateway import World, running_world

pytestmark = pytest.mark.slow

STORM_SECONDS = float(os.environ.get("STAFFROOM_STORM_SECONDS", "30"))
RATE = 200  # bad logins a second
TASKS = 40


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("storm")
    root.chmod(0o711)
    with running_world(root, policy_overrides=POLICY) as w:
        yield w


def audit_count(world: World) -> int:
    return len(world.admin.run("audit", "export", "--json", timeout=120).json())  # type: ignore


async def storm(world: World, seconds: float, statuses: Counter[int],
                retry_after: list[str]) -> None:
    """RATE bad logins a second from TASKS tasks, half from each of two addresses."""
    ctx = tls(world)
    end = time.monotonic() + seconds
    per_task = TASKS / RATE  # seconds between one task's attempts

    async def one(n: int, http: aiohttp.ClientSession) -> None:
        body = {"user": f"guess{n % 7}" if n % 2 else "admin", "password": "hunter2-hunter2",
                "totp": "123456"}
        next_at = time.monotonic() + (n % TASKS) * per_task / TASKS
        while (now := time.monotonic()) < end:
            await asyncio.sleep(max(0.0, next_at - now))
            next_at += per_task
            try:
                async with http.post(world.gateway.url + "/api/v1/login", json=body,
                                     ssl=ctx) as r:
                    await r.read()
                    statuses[r.status] += 1
                    if r.status == 429:
                        retry_after.append(r.headers.get("Retry-After", ""))
            except aiohttp.ClientError:
                statuses[0] += 1

    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        local_addr=(address, 0), limit=TASKS // 2)) for address in ("127.0.0.3", "127.0.0.4")]
    try:
        await asyncio.gather(*(one(n, sessions[n % 2]) for n in range(TASKS)))
    finally:
        for s in sessions:
            await s.close()


async def probe_health(world: World, seconds: float) -> list[float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.abuse.probe", str(world.gateway.port),
        str(world.gateway.ca), str(seconds), stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return sorted(json.loads(out))


async def test_a_login_storm_while_a_teacher_types(world: World) -> None:
    world.add_teacher("t.typist")
    before = audit_count(world)
    statuses: Counter[int] = Counter()
    retry_after: list[str] = []
    with teacher_key(world, "t.typist") as key:
        async with tunnel(world, key) as (ws, _):
            typist = Typist(ws)
            typing = asyncio.create_task(typist.run(STORM_SECONDS + 8))
            await asyncio.sleep(4)  # the desktop draws its first frames
            started = time.monotonic()
            _, latencies = await asyncio.gather(
                storm(world, STORM_SECONDS, statuses, retry_after),
                probe_health(world, STORM_SECONDS))
            stopped = time.monotonic()
            await typing
    attempts = sum(statuses.values())
    frames = [t for t in typist.frames if started <= t <= stopped]
    grown = audit_count(world) - before
    p90 = latencies[int(len(latencies) * 0.9) - 1] if latencies else 99.0
    seen = (f"statuses {dict(statuses)}, health p50 {latencies[len(latencies) // 2]:.3f} s "
            f"p90 {p90:.3f} s max {latencies[-1]:.3f} s, {len(frames)} frames, longest gap "
            f"{typist.longest_gap(started, stopped):.2f} s, {typist.keys} keys, audit +{grown}, "
            f"load {os.getloadavg()[0]:.1f}")
    assert attempts >= RATE * STORM_SECONDS * 0.6, seen  # the client itself may lag on CI
    assert statuses[429] >= attempts * 0.9, seen  # the throttle answered nearly all
    assert statuses[0] == 0 and set(statuses) <= {401, 429}, seen
    assert all(v.isdigit() and int(v) >= 1 for v in retry_after), seen
    # Health within 200 ms; a CI machine shared with other work may stretch the slowest tenth
    # (the figures on a quiet machine are in docs/PERFORMANCE.md).
    assert len(latencies) >= STORM_SECONDS * 2, seen
    assert p90 < 0.2 and latencies[-1] < 2.0, seen
    assert len(frames) >= STORM_SECONDS * 2, seen  # typing keeps drawing
    assert typist.longest_gap(started, stopped) < 2.0, seen
    # One record per attempt that reached the password check, one per burst of refusals:
    # bounded by the throttle, nowhere near one per attempt.
    assert grown < 80 + STORM_SECONDS * 2, seen


async def _idle_tls(world: World, address: str, n: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(n):
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            _, writer = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", world.gateway.port, ssl=tls(world), server_hostname="127.0.0.1",
                local_addr=(address, 0)), 10)
            writers.append(writer)
    return writers


def _open_fds(world: World) -> int:
    assert world.gateway.process is not None
    return len(os.listdir(f"/proc/{world.gateway.process.pid}/fd"))


async def test_a_thousand_idle_connections_do_not_stop_a_new_login(world: World) -> None:
    baseline = _open_fds(world)
    groups = await asyncio.gather(*(_idle_tls(world, f"127.0.1.{i}", 50) for i in range(20)))
    writers = [w for g in groups for w in g]
    try:
        assert len(writers) == 1000
        held = _open_fds(world) - baseline
        assert held <= 600, held  # the gate keeps at most 512 unknown connections
        started = time.monotonic()
        status, data, _ = await api(world, "POST", "/api/v1/login", body={
            "user": "admin", "password": "admin-password-2026",
            "totp": pyotp.parse_uri(world.gateway.totp_uri).at(time.time() + 30)})
        assert status == 200, data
        assert time.monotonic() - started < 5
    finally:
        for writer in writers:
            writer.transport.abort()  # no TLS goodbye left pending at teardown


async def _idle_connection_closed(world: World) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", world.gateway.port, ssl=tls(world), server_hostname="127.0.0.1")
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(1), 30) == b""
    assert 10 <= time.monotonic() - started <= 25, "an idle connection was not cut off in time"
    writer.transport.abort()


async def _trickled_request_cut_off(world: World) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", world.gateway.port, ssl=tls(world), server_hostname="127.0.0.1")
    started = time.monotonic()
    writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    closed = False
    while time.monotonic() - started < 40:
        try:
            writer.write(b"a")
            await writer.drain()
            closed = await asyncio.wait_for(reader.read(1), 2) == b""
        except TimeoutError:
            continue
        except (ConnectionError, ssl.SSLError):
            closed = True
        if closed:
            break
    assert closed and 10 <= time.monotonic() - started <= 25, \
        "a request trickled a byte at a time was not cut off in time"
    writer.transport.abort()


async def _silent_or_oversized_handshake_cut_off(world: World) -> None:
    url = world.gateway.url.replace("https://", "wss://") + "/tunnel"
    async with connect(url, ssl=tls(world)) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 30)
        assert 8 <= time.monotonic() - started <= 15, "a silent tunnel outlived the Hello deadline"
    async with connect(url, ssl=tls(world), max_size=None) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.send("x" * (64 * 1024))  # far over the 16 KiB a Hello may be
            await asyncio.wait_for(ws.recv(), 10)


async def test_idle_trickled_and_silent_connections_are_cut_off(world: World) -> None:
    """Three slow clients at once (each waits out a server deadline of 10-15 s): an idle TLS
    connection, a request trickled a byte at a time, a silent or oversized login handshake."""
    await asyncio.gather(_idle_connection_closed(world), _trickled_request_cut_off(world),
                         _silent_or_oversized_handshake_cut_off(world))
