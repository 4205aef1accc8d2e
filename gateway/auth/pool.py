"""A small bounded pool for deliberately slow work (password hashing, roster imports), so that
none of it runs on the event loop and a flood of logins cannot queue without bound.

Attacker-controlled here: nothing directly — but every login attempt from the internet ends up
here, so the pool has a fixed number of threads and a fixed queue: past `max_queued` waiting
jobs a call is refused at once (PoolBusy) instead of waiting, and the caller answers 503/Denied.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

BUSY = "The gateway is busy checking other logins: try again in a few seconds."


class PoolBusy(Exception):
    """Too many jobs already waiting; the message is one sentence for the person."""


class BoundedPool:
    def __init__(self, workers: int = 2, max_queued: int = 64) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix="staffroom-hash")
        self._slots = max_queued + workers
        self._in_use = 0
        self.refused = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    async def run(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        if self._in_use >= self._slots:
            self.refused += 1
            raise PoolBusy(BUSY)
        self._in_use += 1
        try:
            loop = asyncio.get_running_loop()
            call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
            return await loop.run_in_executor(self._executor, call)
        finally:
            self._in_use -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def pool_of(extras: dict[str, object]) -> BoundedPool:
    """The gateway's one pool, made on first use (kept in GatewayContext.extras)."""
    pool = extras.get("hash_pool")
    if not isinstance(pool, BoundedPool):
        pool = extras["hash_pool"] = BoundedPool()
    return pool
