"""The node bus across machines: PostgreSQL LISTEN/NOTIFY on one dedicated connection.

Attacker-controlled here: NOTIFY payloads on the channel (any database user may send one; each
is decoded with gateway.cluster.signals' bounds and a bad one is logged and skipped). Limits:
payloads of at most signals.MAX_TEXT bytes; reconnects back off up to BACKOFF[-1] seconds, and
after every (re)connect the node re-reads the state it may have missed (`resync`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

import psycopg

from gateway.cluster.bus import BusError, Deliver, Resync, deliver_text, resync_safely
from gateway.cluster.signals import check, encode

log = logging.getLogger(__name__)

CHANNEL = "staffroom_nodes"
BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
CONNECT_TIMEOUT = 5


class PostgresBus:
    def __init__(self, dsn: str, node: str, *, backoff: Sequence[float] = BACKOFF) -> None:
        self.node = node
        self._dsn = dsn
        self._backoff = tuple(backoff)
        self._publisher: psycopg.AsyncConnection[object] | None = None
        self._publish_lock = asyncio.Lock()
        self.reconnects = 0  # listener connections made after the first (for health and tests)

    @property
    def application_name(self) -> str:
        """The listener's name in pg_stat_activity (an operator can see each node's bus)."""
        return f"staffroom-bus-{self.node}"[:63]

    async def _connect(self, name: str) -> psycopg.AsyncConnection[object]:
        return await psycopg.AsyncConnection.connect(
            self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name=name)

    async def publish(self, topic: str, payload: Mapping[str, str]) -> None:
        text = encode(check(topic, self.node, payload))
        async with self._publish_lock:
            for attempt in (1, 2):  # a dropped publisher connection is reopened once
                try:
                    if self._publisher is None or self._publisher.closed:
                        self._publisher = await self._connect(f"staffroom-pub-{self.node}"[:63])
                    await self._publisher.execute("SELECT pg_notify(%s, %s)", (CHANNEL, text))
                    return
                except (psycopg.Error, OSError) as e:
                    await self._drop_publisher()
                    if attempt == 2:
                        raise BusError(f"the node bus cannot be reached: {e}") from None

    async def _drop_publisher(self) -> None:
        if self._publisher is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._publisher.close()
            self._publisher = None

    async def listen(self, deliver: Deliver, resync: Resync) -> None:
        failures = 0
        first = True
        while True:
            try:
                conn = await self._connect(self.application_name)
            except (psycopg.Error, OSError) as e:
                await self._wait(failures, e)
                failures += 1
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if not first:
                        self.reconnects += 1
                        log.info("node bus: listening again after a dropped connection")
                    first, failures = False, 0
                    await resync_safely(resync)  # what was said while we were not listening
                    async for notify in conn.notifies():
                        await deliver_text(notify.payload, deliver, f"pid {notify.pid}")
            except (psycopg.Error, OSError) as e:
                await self._wait(failures, e)
                failures += 1

    async def _wait(self, failures: int, error: BaseException) -> None:
        delay = self._backoff[min(failures, len(self._backoff) - 1)]
        log.warning("node bus: connection lost (%s); retrying in %.1f s",
                    str(error).strip()[:200], delay)
        await asyncio.sleep(delay)

    async def close(self) -> None:
        async with self._publish_lock:
            await self._drop_publisher()
