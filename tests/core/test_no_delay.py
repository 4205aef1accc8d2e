"""Nagle is off on every hop a keystroke and its frame take (issue 11 part G): the agent's
loopback WebSocket to the page, the agent's TLS tunnel to a real gateway, and the gateway's RFB
connection to a real Xvnc. Each helper is also shown to switch it on where it was off.

No permessage-deflate on the two WebSockets either (part J): display frames are compressed
already, and aiohttp deflates every message in Python when a client offers the extension, as
Chromium does. Both servers are offered it by a real client and must decline it."""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiohttp

from agent.connect import ConnectOptions, _open
from agent.nodelay import no_delay as agent_no_delay
from agent.viewer_server import ViewerServer
from gateway.live.tunnel import no_delay as tunnel_no_delay
from gateway.rfb.connection import no_delay as rfb_no_delay
from gateway.rfb.connection import open_rfb
from tests.fixtures.desktops import Desktop
from tests.fixtures.gateway import Gateway
from tests.rfb.memsurface import MemorySurface


def nodelay(sock: socket.socket) -> bool:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_each_helper_switches_nagle_off_on_a_tcp_socket_and_skips_unix_ones() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for helper in (agent_no_delay, tunnel_no_delay, rfb_no_delay):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)  # as a bare socket is
            assert not nodelay(sock)
            assert helper(writer.transport if helper is not rfb_no_delay else writer) is True
            assert nodelay(sock)
            writer.close()
            await writer.wait_closed()
            ours, theirs = socket.socketpair()
            _, uw = await asyncio.open_connection(sock=ours)
            assert helper(uw.transport if helper is not rfb_no_delay else uw) is False
            uw.close()
            await uw.wait_closed()
            theirs.close()
    finally:
        for w in accepted:
            w.close()
            await w.wait_closed()
        server.close()
        await server.wait_closed()


async def test_the_rfb_connection_to_a_real_xvnc_has_nagle_off(xvnc_desktop: Desktop) -> None:
    conn = await open_rfb(xvnc_desktop.host, xvnc_desktop.port, xvnc_desktop.password,
                          MemorySurface())
    try:
        assert nodelay(conn._writer.get_extra_info("socket"))
    finally:
        await conn.close()


async def test_the_agents_tunnel_to_a_real_gateway_has_nagle_off(gateway: Gateway) -> None:
    ws = await _open(ConnectOptions(gateway=gateway.url, ca=str(gateway.ca)))
    try:
        assert nodelay(ws.transport.get_extra_info("socket"))
    finally:
        await ws.close()


async def test_the_pages_websocket_to_the_agent_has_nagle_off_and_no_deflate() -> None:
    async def send_up(frame: bytes) -> None:
        return None

    viewer = ViewerServer(send_up=send_up)
    await viewer.start()
    origin = f"http://127.0.0.1:{viewer.port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(viewer.url) as page:
                assert page.status == 200
            async with http.ws_connect(f"{origin}/display", origin=origin, compress=15) as ws:
                assert "Sec-WebSocket-Extensions" not in ws._response.headers
                assert ws.compress == 0
                assert nodelay(ws._response.connection.transport.get_extra_info("socket"))
                assert viewer._runner is not None and viewer._runner.server is not None
                handlers = viewer._runner.server.connections
                socks = [h.transport.get_extra_info("socket") for h in handlers if h.transport]
                assert socks and all(nodelay(s) for s in socks)
    finally:
        await viewer.stop()


async def test_the_gateways_tunnel_declines_deflate(gateway: Gateway) -> None:
    tls = ssl.create_default_context(cafile=str(gateway.ca))
    url = "wss://" + gateway.url.removeprefix("https://") + "/tunnel"
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(url, ssl=tls, compress=15) as ws:
        assert "Sec-WebSocket-Extensions" not in ws._response.headers
        assert ws.compress == 0
        sock = ws.get_extra_info("socket")
    # TLS closes after its close_notify, a few loop turns later: wait for it here, or the test's
    # loop ends first and the socket is left to the garbage collector (a ResourceWarning in a
    # later test of a full run).
    for _ in range(200):
        if sock.fileno() == -1:
            break
        await asyncio.sleep(0.01)
    assert sock.fileno() == -1
