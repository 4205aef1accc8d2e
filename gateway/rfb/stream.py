"""The socket side of an RfbConnection: the kernel copies straight into the client's buffer.

Attacker-controlled: the socket's bytes, which this module never looks at (all parsing is in
the sans-I/O core). Limits: each read is at most ``read_size`` bytes; once that many bytes wait
unparsed, reading pauses (TCP pushes back on the server) until the parser asks for more, so
the buffer holds at most one bounded message plus two reads; every wait has a deadline.

Why not a StreamReader: a scrolled view is megabytes of Raw from Xvnc per step, and the stream
path copied each byte four times before the decoder saw it (transport → StreamReader buffer →
``read()`` bytes → the parser's buffer → ``consume_exactly``) and made a Task per read for
``wait_for``. An asyncio BufferedProtocol ``recv_into``s the parser's own buffer, and a wait is
one Future and one timer (issue 11).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .client import RfbClient

log = logging.getLogger(__name__)

#: Bytes per read; also how many may wait unparsed before reading pauses.
READ_SIZE = 256 * 1024
#: Free room below which the buffer moves its held bytes to the front before a read.
_MIN_ROOM = 64 * 1024


class RfbStream(asyncio.BufferedProtocol):
    """Feeds one RfbClient from its socket and keeps write flow control for its shell."""

    def __init__(self, client: RfbClient, on_receive: Callable[[bytes], None] | None = None,
                 read_size: int = READ_SIZE) -> None:  # fmt: skip
        self._client = client
        self._on_receive = on_receive
        self._read_size = read_size
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self._unparsed = 0  # bytes received since the parser last asked for more
        self._paused = False
        self._room: memoryview | None = None  # only kept for the receive hook
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._writing_paused = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio's callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses (gateway.event_loop): what
        # this needs of one is reading flow control and writes.
        assert hasattr(transport, "pause_reading") and hasattr(transport, "write")
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        room = self._client.get_buffer(_MIN_ROOM)[: self._read_size]
        if self._on_receive is not None:
            self._room = room
        return room

    def buffer_updated(self, nbytes: int) -> None:
        if self._room is not None and self._on_receive is not None:
            self._on_receive(self._room[:nbytes].tobytes())
            self._room = None
        self._client.buffer_updated(nbytes)
        self._unparsed += nbytes
        if self._unparsed >= self._read_size and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("RFB connection lost: %s", exc)
        self.eof = True
        self._wake()
        self._writing_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- for the shell -------------------------------------------------------------------
    async def data_or_eof(self, timeout: float | None) -> None:
        """Return once bytes arrive after this call (already in the client's buffer) or the
        stream ends (``eof``). Raises TimeoutError after ``timeout`` seconds without either."""
        self._unparsed = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        if self.eof:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def wait_closed(self) -> None:
        await self.closed

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if not self._writing_paused:
            return
        self._drain = self._drain if self._drain and not self._drain.done() else (
            asyncio.get_running_loop().create_future())
        await self._drain


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
