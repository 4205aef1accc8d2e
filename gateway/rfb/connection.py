"""The asyncio shell around RfbClient: it reads, feeds, loops over events and writes.

Attacker-controlled: the socket's bytes (all parsing is in the core). Limits here: connect,
handshake and mid-message deadlines (a server that starts a message must finish it), reads of
at most READ_SIZE bytes, paused while READ_SIZE bytes wait for the core, so buffering stays
bounded (see stream.py, which reads straight into the core's buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from .client import RfbClient
from .encodings import LOOPBACK_ENCODINGS
from .errors import RemoteProtocolError, RfbError, RfbTimeout
from .events import NEED_DATA, Closed, Event, ServerInit
from .limits import Limits
from .stream import READ_SIZE, RfbStream
from .surface import Surface

log = logging.getLogger(__name__)

#: Called with every chunk sent / received, for recording and audit.
Hook = Callable[[bytes], None]


class RfbConnection:
    """A connected RFB session. Create with ``open_rfb``; use from one event loop."""

    def __init__(
        self,
        transport: asyncio.Transport,
        stream: RfbStream,
        client: RfbClient,
        *,
        message_timeout: float | None,
        idle_timeout: float | None,
        on_send: Hook | None,
    ) -> None:
        self._stream = stream  # feeds ``client`` (and calls the receive hook)
        self._writer = transport
        self.client = client
        self._message_timeout = message_timeout
        self._idle_timeout = idle_timeout
        self._on_send = on_send
        self.server_init: ServerInit | None = None
        self.closed = False

    @property
    def width(self) -> int:
        return self.client.width

    @property
    def height(self) -> int:
        return self.client.height

    async def _write(self, data: bytes) -> None:
        if not data or self.closed:
            return
        if self._on_send is not None:
            self._on_send(data)
        if self._writer.is_closing():
            log.info("RFB write failed: the connection is closed")
            return
        try:
            self._writer.write(data)
            await self._stream.drain()
        except (ConnectionError, OSError) as exc:
            # The reading side reports the loss as Closed; input to a dead peer is moot.
            log.info("RFB write failed: %s", exc)

    async def _next(self) -> Event:
        while True:
            event = self.client.next_event()
            await self._write(self.client.data_to_send())
            if event is not NEED_DATA:
                assert not isinstance(event, type(NEED_DATA))
                return event
            timeout = self._message_timeout if self.client.mid_message else self._idle_timeout
            try:
                await self._stream.data_or_eof(timeout)  # the bytes land in the client
            except TimeoutError:
                what = "in the middle of a message" if self.client.mid_message else "while idle"
                raise RfbTimeout(f"no data from the server for {timeout}s {what}") from None
            if self._stream.eof:
                self.client.feed(b"")

    async def events(self) -> AsyncIterator[Event]:
        """Events until Closed (which is yielded last). Errors close the connection first."""
        try:
            while True:
                event = await self._next()
                yield event
                if isinstance(event, Closed):
                    await self.close()
                    return
        except RfbError as exc:
            log.warning("RFB connection closed: %s", exc.reason)
            self._abort()
            raise
        except Exception:
            log.exception("RFB connection closed after an internal error")
            self._abort()
            raise

    async def request_update(
        self, incremental: bool = True, region: tuple[int, int, int, int] | None = None
    ) -> None:
        await self._write(self.client.framebuffer_update_request(incremental, region))

    async def key(self, keysym: int, down: bool) -> None:
        await self._write(self.client.key_event(keysym, down))

    async def pointer(self, x: int, y: int, button_mask: int = 0) -> None:
        await self._write(self.client.pointer_event(x, y, button_mask))

    async def cut_text(self, text: str | bytes) -> None:
        """Clipboard to the desktop (see ``RfbClient.cut_text``; bytes go as classic
        ISO 8859-1 ClientCutText). The gateway's policy normally never calls this."""
        if isinstance(text, bytes):
            await self._write(self.client.client_cut_text(text))
        else:
            await self._write(self.client.cut_text(text))

    async def set_encodings(self, encodings: tuple[int, ...]) -> None:
        await self._write(self.client.set_encodings(encodings))

    def _abort(self) -> None:
        self.closed = True
        self._writer.abort()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            # wait_for, as with the StreamWriter before: the live session closes us in its
            # viewer's handler task, which aiohttp cancels when that viewer's socket drops.
            await asyncio.wait_for(self._stream.wait_closed(), 2.0)


def no_delay(writer: Any) -> bool:
    """TCP_NODELAY on a TCP connection (False for a Unix socket): a key event and an update
    request are a few bytes each and must not wait behind Nagle's algorithm for the previous
    segment's ACK. asyncio already sets it on TCP transports; this keeps it a guarantee."""
    sock = writer.get_extra_info("socket")  # a StreamWriter or a transport
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True


async def open_rfb(
    host: str,
    port: int,
    password: str | bytes | None,
    surface: Surface,
    *,
    encodings: tuple[int, ...] = LOOPBACK_ENCODINGS,
    limits: Limits | None = None,
    connect_timeout: float = 10.0,
    handshake_timeout: float = 10.0,
    message_timeout: float | None = 30.0,
    idle_timeout: float | None = None,
    on_send: Hook | None = None,
    on_receive: Hook | None = None,
    clipboard: bool = False,
    path: str | None = None,
    allow_none: bool = True,
) -> RfbConnection:
    """Connect and run the handshake; returns once ServerInit has resized ``surface``.

    ``clipboard=True`` asks for the Extended Clipboard (UTF-8 ServerCutText events,
    ``cut_text`` as UTF-8); leave it off when policy forbids the clipboard: we then never ask.

    ``path`` connects to a Unix socket instead of host:port (a gateway-started Xvnc);
    ``allow_none=False`` refuses a server that offers only security type None.

    Raises RfbError (ServerRefused, AuthenticationFailed, RemoteProtocolError, RfbTimeout)
    or OSError when the TCP connection fails. Call ``request_update(False)`` next.
    """
    where = path or f"{host}:{port}"
    client = RfbClient(
        surface, password=password, encodings=encodings, limits=limits, clipboard=clipboard,
        allow_none=allow_none,
    )
    loop = asyncio.get_running_loop()

    def stream() -> RfbStream:
        return RfbStream(client, on_receive, READ_SIZE)

    opening = (loop.create_unix_connection(stream, path) if path is not None
               else loop.create_connection(stream, host, port))  # fmt: skip
    try:
        transport, protocol = await asyncio.wait_for(opening, connect_timeout)
    except TimeoutError:
        raise RfbTimeout(f"connect to {where} timed out after {connect_timeout}s") from None
    no_delay(transport)
    conn = RfbConnection(
        transport, protocol, client,
        message_timeout=message_timeout, idle_timeout=None, on_send=on_send,
    )  # fmt: skip
    try:
        async with asyncio.timeout(handshake_timeout):
            event = await conn._next()
    except TimeoutError:
        conn._abort()
        raise RfbTimeout(f"RFB handshake not done after {handshake_timeout}s") from None
    except BaseException:
        conn._abort()
        raise
    if not isinstance(event, ServerInit):
        conn._abort()
        reason = event.reason if isinstance(event, Closed) else f"unexpected {event!r}"
        raise RemoteProtocolError(reason)
    conn.server_init = event
    conn._idle_timeout = idle_timeout
    log.info("RFB %d.%d connected to %s, desktop %dx%d", *client.version or (0, 0),
             where, event.width, event.height)  # fmt: skip
    return conn
