"""The seam every node bus implements (SQLite polling, PostgreSQL LISTEN/NOTIFY)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from gateway.cluster.signals import BadSignal, Signal, decode

log = logging.getLogger(__name__)

Deliver = Callable[[Signal], Awaitable[None]]
Resync = Callable[[], Awaitable[None]]


class NodeBus(Protocol):
    node: str

    async def publish(self, topic: str, payload: Mapping[str, str]) -> None:
        """Send to every node (this one included); raises BusError when it cannot."""
        ...

    async def listen(self, deliver: Deliver, resync: Resync) -> None:
        """Deliver signals until cancelled; call `resync` whenever signals may have been
        missed (at start and after each reconnect), so the node re-reads the database."""
        ...

    async def close(self) -> None: ...


class BusError(Exception):
    """A signal could not be published (the database is unreachable); logged by callers."""


async def deliver_text(text: str | bytes, deliver: Deliver, source: str) -> None:
    """Decode and deliver one received signal: a bad one is logged and dropped, and a failing
    handler is logged too — neither ever stops the listener."""
    try:
        signal = decode(text)
    except BadSignal as e:
        log.warning("node bus: ignored a malformed signal from %s: %s", source, e)
        return
    try:
        await deliver(signal)
    except Exception:
        log.exception("node bus: handling %s from %s failed", signal.topic, signal.origin)


async def resync_safely(resync: Resync) -> None:
    """Re-read the state after a possible gap; a failure is logged, the listener goes on."""
    try:
        await resync()
    except Exception:
        log.exception("node bus: re-reading the state after a gap failed")
