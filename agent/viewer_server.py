"""The agent's loopback web server: serves viewer/ and relays display frames to the gateway.

Attacker-controlled here: requests from anything on this PC that can reach 127.0.0.1 (other
local users, web pages trying DNS rebinding or cross-site WebSockets). Limits: it binds
127.0.0.1 only; the page is handed out once, for a one-time token in the URL, and then only to the
browser holding the HttpOnly SameSite=Strict cookie set with it; the WebSocket needs that cookie
and an Origin of this very server; Host must be 127.0.0.1:PORT; one viewer at a time; a strict
Content-Security-Policy keeps the page from loading or sending anything elsewhere.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSMsgType, web

from agent.nodelay import no_delay

log = logging.getLogger(__name__)

VIEWER_DIR = Path(__file__).resolve().parent.parent / "viewer"
COOKIE = "staffroom_viewer"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "clipboard-read=(), clipboard-write=(), camera=(), microphone=(), "
                          "usb=(), serial=(), hid=(), geolocation=()",
}
MAX_VIEWER_FRAME = 64 * 1024

# Relay hooks: the tunnel side gives the viewer side these two callables.
SendUp = Callable[[bytes], Awaitable[None]]


@dataclass
class ViewerServer:
    """Serves one viewer page; frames go up through `send_up`, come down through `push`."""

    send_up: SendUp
    on_viewer_gone: Callable[[], None] = lambda: None
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    cookie: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    port: int = 0
    _token_used: bool = False
    _viewer: web.WebSocketResponse | None = None
    _runner: web.AppRunner | None = None
    _backlog: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/display", self._display)
        app.router.add_get("/{name:[a-z0-9_-]+\\.(?:js|css|svg|png)}", self._asset)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._viewer is not None:
            await self._viewer.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def push(self, frame: bytes) -> None:
        """A display frame from the gateway, for the page (kept briefly until the page is up)."""
        if self._viewer is None or self._viewer.closed:
            if len(self._backlog) < 256:
                self._backlog.append(frame)
            return
        await self._viewer.send_bytes(frame)

    @web.middleware
    async def _guard(self, request: web.Request, handler: web.Handler) -> web.StreamResponse:
        if request.host != f"127.0.0.1:{self.port}":
            raise web.HTTPForbidden(reason="wrong host")  # DNS rebinding
        if request.path != "/" and not self._has_cookie(request):
            raise web.HTTPForbidden(reason="open the viewer from the link the agent printed")
        response = await handler(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def _has_cookie(self, request: web.Request) -> bool:
        return hmac.compare_digest(request.cookies.get(COOKIE, ""), self.cookie)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        offered = request.query.get("token", "")
        if not self._has_cookie(request):
            if self._token_used or not hmac.compare_digest(offered, self.token):
                raise web.HTTPForbidden(reason="this viewer link was already used")
            self._token_used = True
        response = web.FileResponse(VIEWER_DIR / "index.html")
        response.set_cookie(COOKIE, self.cookie, httponly=True, samesite="Strict", path="/")
        return response

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        path = VIEWER_DIR / request.match_info["name"]
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def _display(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Origin") != f"http://127.0.0.1:{self.port}":
            raise web.HTTPForbidden(reason="cross-origin")
        if self._viewer is not None and not self._viewer.closed:
            await self._viewer.close(code=4000, message=b"opened in another tab")
        # No permessage-deflate (Chromium offers it): frames are already compressed, and
        # deflating each one in Python (in a thread past a size) delays every frame and key.
        ws = web.WebSocketResponse(max_msg_size=MAX_VIEWER_FRAME, compress=False)
        await ws.prepare(request)
        no_delay(request.transport)  # frames and keys are small: never held back by Nagle
        self._viewer = ws
        backlog, self._backlog = self._backlog, []
        for frame in backlog:
            await ws.send_bytes(frame)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await self.send_up(msg.data)
            elif msg.type == WSMsgType.ERROR:
                break
        if self._viewer is ws:
            self._viewer = None
            self.on_viewer_gone()
        return ws


async def serve_viewer(send_up: SendUp) -> ViewerServer:
    server = ViewerServer(send_up=send_up)
    await server.start()
    return server

