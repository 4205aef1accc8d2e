"""The connection gate's decisions (pure): caps on unknown connections evict the oldest idle one,
idle unknown connections are swept, known ones are left alone, the handshake byte budget."""

from __future__ import annotations

import asyncio

import pytest

from gateway.auth.pool import BoundedPool, PoolBusy
from gateway.net.gate import ConnectionTable, GateLimits


def test_a_new_connection_over_the_cap_closes_the_oldest_idle_unknown_one() -> None:
    t = ConnectionTable(GateLimits(max_unknown=3, per_address=10))
    for i in range(3):
        assert t.opened(i, f"10.0.0.{i}", float(i)) == []
    t.request_started(0, 5.0)  # busy: not evictable
    t.mark_known(1)  # an operator signed in on it: not counted
    assert t.opened(3, "10.0.0.9", 6.0) == []  # 3 unknown: 0 (busy), 2, 3
    assert t.opened(4, "10.0.0.9", 7.0) == [2]  # the oldest idle unknown one goes


def test_one_address_cannot_hold_more_than_its_share() -> None:
    t = ConnectionTable(GateLimits(max_unknown=100, per_address=2))
    assert t.opened("a", "198.51.100.1", 0.0) == []
    assert t.opened("b", "198.51.100.1", 1.0) == []
    assert t.opened("c", "198.51.100.1", 2.0) == ["a"]
    assert t.opened("x", "203.0.113.5", 3.0) == []  # others are not affected


def test_when_every_other_connection_is_busy_the_newcomer_is_closed() -> None:
    t = ConnectionTable(GateLimits(max_unknown=1, per_address=10))
    t.opened("a", "h", 0.0)
    t.request_started("a", 0.0)
    assert t.opened("b", "h", 1.0) == ["b"]


def test_idle_unknown_connections_are_swept_but_not_known_or_busy_ones() -> None:
    t = ConnectionTable(GateLimits(idle_after=15.0))
    for key in ("idle", "busy", "known", "fresh"):
        t.opened(key, "h", 0.0)
    t.request_started("busy", 1.0)
    t.mark_known("known")
    t.request_ended("fresh", 10.0)  # a request finished at 10 s: idle from then
    assert t.sweep(14.0) == []
    assert t.sweep(15.0) == ["idle"]
    assert set(t.sweep(25.0)) == {"idle", "fresh"}


def test_bytes_do_not_count_as_activity_and_the_handshake_budget_is_enforced() -> None:
    t = ConnectionTable(GateLimits(idle_after=15.0, handshake_bytes=100))
    t.opened("c", "h", 0.0)
    assert t.received("c", 10_000)  # no budget outside the login handshake
    assert t.sweep(20.0) == ["c"]  # trickling bytes is still idle
    t.start_handshake("c")
    assert t.received("c", 60) and t.received("c", 40)
    assert not t.received("c", 1)
    t.mark_known("c")
    assert t.received("c", 10_000_000)  # logged in: no budget


async def test_the_pool_refuses_at_once_past_its_queue() -> None:
    pool = BoundedPool(workers=1, max_queued=1)
    gate = asyncio.Event()
    loop = asyncio.get_running_loop()

    def wait() -> None:
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()

    jobs = [asyncio.create_task(pool.run(wait)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(PoolBusy, match="busy"):
        await pool.run(wait)
    gate.set()
    await asyncio.gather(*jobs)
    assert pool.in_use == 0 and pool.refused == 1
    pool.close()
