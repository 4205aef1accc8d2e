"""The node bus on one machine: processes sharing one SQLite file, polled every 250 ms; the
table is read only when SQLite says something was committed since the last poll."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.cluster.signals import SESSION_END, USER_END, Signal
from gateway.cluster.sqlite_bus import BATCH, KEEP_SECONDS, SqliteBus


class Listener:
    def __init__(self, bus: SqliteBus) -> None:
        self.bus = bus
        self.got: asyncio.Queue[tuple[float, Signal]] = asyncio.Queue()
        self.resyncs = 0
        self.task: asyncio.Task[None] | None = None

    async def deliver(self, signal: Signal) -> None:
        if signal.payload.get("user") == "explode":
            raise RuntimeError("a handler bug")
        self.got.put_nowait((time.monotonic(), signal))

    async def resync(self) -> None:
        self.resyncs += 1

    async def start(self) -> None:
        self.task = asyncio.create_task(self.bus.listen(self.deliver, self.resync))
        for _ in range(100):  # listening once the first resync ran
            if self.resyncs:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("listener did not start")

    async def next(self, timeout: float = 2.0) -> tuple[float, Signal]:
        return await asyncio.wait_for(self.got.get(), timeout)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[SqliteBus, Listener]]:
    db = tmp_path / "state.db"
    a, b = SqliteBus(db, "a"), SqliteBus(db, "b")
    listener = Listener(b)
    await listener.start()
    yield a, listener
    assert listener.task is not None
    listener.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener.task
    await a.close()
    await b.close()


async def test_delivers_within_half_a_second(pair: tuple[SqliteBus, Listener]) -> None:
    a, listener = pair
    delays = []
    for i in range(5):
        sent = time.monotonic()
        await a.publish(USER_END, {"user": f"t.{i}", "reason": "Your key was revoked."})
        got_at, signal = await listener.next()
        delays.append(got_at - sent)
        assert signal.origin == "a" and signal.payload["user"] == f"t.{i}"
    assert max(delays) < 0.5, delays


async def test_forged_rows_are_logged_and_ignored(
        pair: tuple[SqliteBus, Listener], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    a, listener = pair
    raw = sqlite3.connect(tmp_path / "state.db")
    with raw:
        for junk in ("not json", '{"v":1,"topic":"drop","origin":"a","payload":{}}',
                     "x" * 100_000, '{"v":1,"topic":"user.end","origin":"a","payload":'
                     '{"user":"u","reason":"","extra":"1"}}'):
            raw.execute("INSERT INTO cluster_signals (at, payload) VALUES (?, ?)",
                        (time.time(), junk))
    raw.close()
    await a.publish(USER_END, {"user": "explode", "reason": ""})  # a handler that fails
    await a.publish(SESSION_END, {"session": "00aa11bb22cc", "node": "b", "reason": "ok"})
    _, signal = await listener.next()
    assert signal.payload["session"] == "00aa11bb22cc"  # the listener lived through all that
    assert listener.task is not None and not listener.task.done()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("ignored a malformed signal" in m for m in messages) == 4
    assert any("handling user.end from a failed" in m for m in messages)


async def test_old_rows_are_pruned_and_a_new_listener_starts_at_the_end(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    now = [1000.0]
    a = SqliteBus(db, "a", clock=lambda: now[0])
    await a.publish(USER_END, {"user": "old", "reason": ""})
    now[0] += KEEP_SECONDS + 1
    await a.publish(USER_END, {"user": "new", "reason": ""})
    raw = sqlite3.connect(db)
    assert [r[0] for r in raw.execute("SELECT payload FROM cluster_signals")] == [
        '{"v":1,"topic":"user.end","origin":"a","payload":{"user":"new","reason":""}}']
    raw.close()
    late = Listener(SqliteBus(db, "c"))
    await late.start()  # signals from before it listened are state's business (resync)
    with pytest.raises(TimeoutError):
        await late.next(timeout=0.6)
    assert late.task is not None
    late.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await late.task
    await a.close()
    await late.bus.close()


class CountingBus(SqliteBus):
    """Counts the reads of the table (each one a thread hop and a query)."""

    reads = 0

    def _after(self, last: int) -> list[tuple[int, str]]:
        self.reads += 1
        return super()._after(last)


async def stop(listener: Listener) -> None:
    assert listener.task is not None
    listener.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener.task
    await listener.bus.close()


async def test_a_quiet_bus_reads_nothing_and_its_own_signals_and_strangers_rows_still_come(
        tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    bus = CountingBus(db, "b", poll=0.02)
    listener = Listener(bus)
    await listener.start()
    await asyncio.sleep(0.1)
    settled = bus.reads
    await asyncio.sleep(0.5)  # 25 polls with nothing committed
    assert bus.reads == settled <= 3
    # Its own publisher (a node hears its own signals) and another connection both commit.
    await bus.publish(USER_END, {"user": "t.own", "reason": ""})
    _, signal = await listener.next()
    assert signal.payload["user"] == "t.own"
    raw = sqlite3.connect(db)
    with raw:
        raw.execute("INSERT INTO cluster_signals (at, payload) VALUES (?, ?)", (time.time(),
                    '{"v":1,"topic":"user.end","origin":"z","payload":{"user":"t.raw",'
                    '"reason":""}}'))
    raw.close()
    _, signal = await listener.next()
    assert signal.payload["user"] == "t.raw" and signal.origin == "z"
    assert bus.reads <= settled + 4  # a read per commit (and one more at most per poll race)
    await stop(listener)


async def test_more_than_a_batch_of_rows_is_read_without_waiting_for_another_commit(
        tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    a, listener = SqliteBus(db, "a"), Listener(SqliteBus(db, "b", poll=0.05))
    await listener.start()
    raw = sqlite3.connect(db)
    with raw:  # one commit of BATCH + 5 rows: the second read has no new commit to wake it
        raw.executemany("INSERT INTO cluster_signals (at, payload) VALUES (?, ?)", [
            (time.time(), '{"v":1,"topic":"user.end","origin":"a","payload":{"user":"t.'
                          f'{i}","reason":""}}}}') for i in range(BATCH + 5)])
    raw.close()
    users = [(await listener.next())[1].payload["user"] for _ in range(BATCH + 5)]
    assert users == [f"t.{i}" for i in range(BATCH + 5)]
    await stop(listener)
    await a.close()
