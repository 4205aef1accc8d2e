"""No permessage-deflate on the WebSockets a keystroke and its frame take (issue 11 part J):
display frames are compressed already, and aiohttp deflates every message in Python (in a
thread past a size) when a client offers the extension, as Chromium does. Both servers are
offered it here by a real client and must decline (no Sec-WebSocket-Extensions answer)."""

from __future__ import annotations

import ssl

import aiohttp

from agent.viewer_server import ViewerServer
from tests.fixtures.gateway import Gateway


async def test_the_agents_page_websocket_declines_deflate() -> None:
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
    finally:
        await viewer.stop()


async def test_the_gateways_tunnel_declines_deflate(gateway: Gateway) -> None:
    tls = ssl.create_default_context(cafile=str(gateway.ca))
    url = "wss://" + gateway.url.removeprefix("https://") + "/tunnel"
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(url, ssl=tls, compress=15) as ws:
        assert "Sec-WebSocket-Extensions" not in ws._response.headers
        assert ws.compress == 0
