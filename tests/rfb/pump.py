"""Test helper: consume an RfbConnection's events in a task so tests can wait with timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from PIL import Image

from gateway.rfb.connection import RfbConnection
from gateway.rfb.events import Event, UpdateDone

from .memsurface import MemorySurface


class Pump:
    def __init__(self, conn: RfbConnection) -> None:
        self.conn = conn
        self.queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for event in self.conn.events():
                self.queue.put_nowait(event)
        except Exception as exc:
            self.queue.put_nowait(exc)

    async def get(self, timeout: float = 10.0) -> Event:
        item = await asyncio.wait_for(self.queue.get(), timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    async def update(self, timeout: float = 10.0) -> UpdateDone:
        while True:
            event = await self.get(timeout)
            if isinstance(event, UpdateDone):
                return event

    async def stop(self) -> None:
        await self.conn.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def converge(
    pump: Pump,
    surface: MemorySurface,
    grab: Callable[[], Image.Image],
    check: Callable[[Image.Image], bool] = lambda _: True,
    timeout: float = 15.0,
) -> Image.Image:
    """Request incremental updates until the surface equals the X server's pixels and
    ``check(screen)`` holds; returns the screen. Fails with the number of differing bytes."""
    deadline = time.monotonic() + timeout
    await pump.conn.request_update(True)
    while True:
        try:
            await pump.update(timeout=0.5)
            await pump.conn.request_update(True)
        except TimeoutError:
            pass  # nothing changed on screen; the request stays outstanding
        screen = grab()
        ours = surface.image()
        if check(screen) and ours.tobytes() == screen.tobytes():
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"surface differs from the X server: {_describe(ours, screen)}")


def _describe(ours: Image.Image, screen: Image.Image) -> str:
    a, b = ours.tobytes(), screen.tobytes()
    diffs = [i // 3 for i in range(0, len(a), 3) if a[i : i + 3] != b[i : i + 3]]
    if not diffs:
        return "identical now"
    w = ours.width
    xs, ys = [i % w for i in diffs], [i // w for i in diffs]
    first = diffs[0]
    return (
        f"{len(diffs)} pixels in box x {min(xs)}-{max(xs)}, y {min(ys)}-{max(ys)}; first at "
        f"({first % w}, {first // w}): ours {a[first * 3 : first * 3 + 3].hex()} "
        f"X {b[first * 3 : first * 3 + 3].hex()}"
    )


@contextlib.asynccontextmanager
async def listening(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
                    ) -> AsyncIterator[int]:
    """A loopback TCP server running ``handle`` per connection (a scripted VNC server); yields
    its port and closes it afterwards."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
