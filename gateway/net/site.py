"""The listening socket with a gate in front of aiohttp: counts each connection, closes idle
unknown ones, evicts the oldest idle unknown one when a cap is reached, and cuts a login
handshake that sends too much (the policy of which is gateway.net.gate; this is the shell).

Attacker-controlled here: connections and the bytes on them before any login. Limits: those of
GateLimits, plus a TLS handshake deadline (TLS_HANDSHAKE_SECONDS) and aiohttp's keep-alive
timeout for idle connections of known operators.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from asyncio import sslproto
from typing import Any

from aiohttp import web

from gateway.net.gate import ConnectionTable, GateLimits

log = logging.getLogger(__name__)

TLS_HANDSHAKE_SECONDS = 10.0
SWEEP_EVERY = 1.0
# asyncio gives every TLS connection a 256 KiB read buffer (SSLProtocol.max_size), filled with
# zeros at once: 512 idle connections would hold 128 MiB. A TLS record is at most 16 KiB, so
# 32 KiB reads cost nothing in speed. (A class attribute: set for this process, which serves
# only the gateway's own TLS connections.)
TLS_READ_BUFFER = 32 * 1024


class Gate:
    def __init__(self, limits: GateLimits | None = None) -> None:
        self.table = ConnectionTable(limits)
        self._transports: dict[int, asyncio.BaseTransport] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def opened(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._transports[id(transport)] = transport
        for key in self.table.opened(id(transport), str(peer[0]) if peer else "?",
                                     self._now()):
            self._close(key)

    def closed(self, transport: asyncio.BaseTransport) -> None:
        self.table.closed(id(transport))
        self._transports.pop(id(transport), None)

    def received(self, transport: asyncio.BaseTransport, size: int) -> bool:
        return self.table.received(id(transport), size)

    def _close(self, key: object) -> None:
        transport = self._transports.get(key)  # type: ignore[call-overload]
        if transport is not None:
            transport.abort()  # type: ignore[attr-defined]

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="connection-gate")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            for key in self.table.sweep(self._now()):
                self._close(key)

    def protocol_factory(self, inner: Any) -> Any:
        def make() -> asyncio.Protocol:
            return _Guarded(inner(), self)
        return make


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol, with the gate told of each connection and its bytes."""

    def __init__(self, inner: asyncio.Protocol, gate: Gate) -> None:
        self._inner, self._gate = inner, gate
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._gate.opened(transport)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        if not self._gate.received(self._transport, len(data)):
            self._transport.abort()  # type: ignore[attr-defined]
            return
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._gate.closed(self._transport)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


GATE = web.AppKey("connection_gate", Gate)
# The gateway speaks only HTTPS; a browser that has seen it once never tries plain HTTP (a year,
# as Mozilla's guidelines advise; no includeSubDomains: the school's other hosts are not ours).
HSTS = "max-age=31536000"


async def add_hsts(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Strict-Transport-Security", HSTS)


def _gate_of(request: web.Request) -> Gate | None:
    return request.app.get(GATE)


def mark_known(request: web.Request) -> None:
    """Someone authenticated on this connection: it no longer counts against the caps."""
    gate = _gate_of(request)
    if gate is not None and request.transport is not None:
        gate.table.mark_known(id(request.transport))


def start_handshake(request: web.Request) -> None:
    """The tunnel's login handshake begins: from now the peer's bytes are counted."""
    gate = _gate_of(request)
    if gate is not None and request.transport is not None:
        gate.table.start_handshake(id(request.transport))


@web.middleware
async def gate_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """A connection with a request in progress is busy (not idle)."""
    gate = _gate_of(request)
    if gate is None or request.transport is None:
        return await handler(request)
    key = id(request.transport)
    gate.table.request_started(key, gate._now())
    try:
        return await handler(request)
    finally:
        gate.table.request_ended(key, gate._now())


class GatedSite(web.BaseSite):
    """Like web.TCPSite, with the gate and a TLS handshake deadline."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 ssl_context: ssl.SSLContext, gate: Gate) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host, self._port, self._gate = host, port, gate

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        sslproto.SSLProtocol.max_size = TLS_READ_BUFFER
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._gate.protocol_factory(server), self._host, self._port,
            ssl=self._ssl_context, ssl_handshake_timeout=TLS_HANDSHAKE_SECONDS,
            reuse_address=True)
        self._gate.start()

    async def stop(self) -> None:
        await self._gate.stop()
        await super().stop()
