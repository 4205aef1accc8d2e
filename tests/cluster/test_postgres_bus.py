"""The node bus across machines: LISTEN/NOTIFY on a real PostgreSQL, through a dropped
connection (pg_terminate_backend) and the re-read of state that follows it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from gateway.cluster.postgres_bus import CHANNEL, PostgresBus
from gateway.cluster.signals import SESSION_END, USER_END, Signal


class Listener:
    def __init__(self, bus: PostgresBus) -> None:
        self.bus = bus
        self.got: asyncio.Queue[tuple[float, Signal]] = asyncio.Queue()
        self.resynced: asyncio.Queue[float] = asyncio.Queue()
        self.task = asyncio.create_task(bus.listen(self.deliver, self.resync))

    async def deliver(self, signal: Signal) -> None:
        self.got.put_nowait((time.monotonic(), signal))

    async def resync(self) -> None:
        self.resynced.put_nowait(time.monotonic())

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.bus.close()


@pytest.fixture
async def nodes(pg_dsn: str) -> AsyncIterator[tuple[PostgresBus, Listener]]:
    a = PostgresBus(pg_dsn, "a")
    listener = Listener(PostgresBus(pg_dsn, "b", backoff=(0.1, 0.2)))
    await asyncio.wait_for(listener.resynced.get(), 10)  # listening
    yield a, listener
    await listener.stop()
    await a.close()


async def test_notify_delivers(nodes: tuple[PostgresBus, Listener]) -> None:
    a, listener = nodes
    sent = time.monotonic()
    await a.publish(SESSION_END, {"session": "0011223344556677", "node": "b", "reason": "x"})
    got_at, signal = await asyncio.wait_for(listener.got.get(), 2)
    assert signal.payload["session"] == "0011223344556677" and signal.origin == "a"
    assert got_at - sent < 0.5


async def test_forged_notifications_are_ignored(nodes: tuple[PostgresBus, Listener],
                                                pg_dsn: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    a, listener = nodes
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as raw:
        for junk in ("{", '{"v":1,"topic":"user.end","origin":"a","payload":{"user":7,'
                     '"reason":""}}', "x" * 7000):
            await raw.execute("SELECT pg_notify(%s, %s)", (CHANNEL, junk))
    await a.publish(USER_END, {"user": "t.after", "reason": ""})
    _, signal = await asyncio.wait_for(listener.got.get(), 2)
    assert signal.payload["user"] == "t.after"
    assert sum("ignored a malformed signal" in r.getMessage() for r in caplog.records) == 3


async def test_survives_a_killed_backend_and_rereads_state(
        nodes: tuple[PostgresBus, Listener], pg_dsn: str) -> None:
    a, listener = nodes
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as admin:
        cur = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (listener.bus.application_name,))
        assert [r[0] for r in await cur.fetchall()] == [True]
        # Said while the listener was gone: lost to it, so it must re-read the state.
        await a.publish(USER_END, {"user": "t.missed", "reason": ""})
        await asyncio.wait_for(listener.resynced.get(), 10)
        assert listener.bus.reconnects == 1
        cur = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                  "application_name = %s", (listener.bus.application_name,))
        assert (await cur.fetchone()) == (1,)
        # The publisher's own connection is killed too: it reconnects on the next publish.
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                            "application_name = 'staffroom-pub-a'")
    while not listener.got.empty():
        listener.got.get_nowait()
    await a.publish(USER_END, {"user": "t.after", "reason": ""})
    _, signal = await asyncio.wait_for(listener.got.get(), 2)
    assert signal.payload["user"] == "t.after"
    assert not listener.task.done()
