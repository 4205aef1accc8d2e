"""A tiny stand-in for the agent's loopback server: viewer/ under the agent's CSP, /display relay.

It serves only what the real agent serves (agent/viewer_server.py) and checks the token and the
Origin the same way; what the page sends is decoded with the real codec and kept for the tests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import WSMsgType, web

from agent.viewer_server import MAX_VIEWER_FRAME
from gateway.wire import display as w

VIEWER = Path(__file__).resolve().parents[2] / "viewer"
# The agent's Content-Security-Policy, verbatim (test_viewer_lockdown checks they agree).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")  # fmt: skip
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--force-color-profile=srgb"]  # fmt: skip
TOKEN = "one-time-token-123"
CONTROL_PAGE = ('<!doctype html><meta charset="utf-8"><title>control</title>'
                '<div id="editable" contenteditable="true">x</div>')  # fmt: skip


class FakeAgent:
    """The agent's loopback side: serves viewer/ under the strict CSP and relays /display."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[w.Message] = asyncio.Queue()
        self.received: list[w.Message] = []  # everything the page ever sent, in order
        self.other_frames: list[WSMsgType] = []  # non-binary WebSocket frames from the page
        self.ws: web.WebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.origin = ""
        self.extra_headers: dict[str, str] = {}  # e.g. the agent's Permissions-Policy
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/display", self.display)
        app.router.add_get("/control/editable.html", self.control)
        app.router.add_get("/{name}", self.static)
        return app

    async def start(self) -> str:
        """Serve on a free loopback port; returns the origin (http://127.0.0.1:PORT)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.origin = f"http://127.0.0.1:{port}"
        return self.origin

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = VIEWER / name
        if path.parent != VIEWER or not path.is_file() or path.suffix == ".md":
            raise web.HTTPNotFound()
        resp = web.FileResponse(path)
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers.update(self.extra_headers)
        if name.endswith(".js"):
            resp.content_type = "text/javascript"
        return resp

    async def control(self, request: web.Request) -> web.StreamResponse:
        """A page without lock-down, same origin and CSP: shows what a vector does unhindered."""
        return web.Response(text=CONTROL_PAGE, content_type="text/html",
                            headers={"Content-Security-Policy": CSP})  # fmt: skip

    async def display(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("token") != TOKEN or request.headers.get("Origin") != self.origin:
            raise web.HTTPForbidden()
        ws = web.WebSocketResponse(max_msg_size=MAX_VIEWER_FRAME)  # as the agent's
        await ws.prepare(request)
        self.ws = ws
        self.connected.set()
        dec = w.DisplayDecoder(w.Direction.TO_GATEWAY)
        async for msg in ws:
            if msg.type is not WSMsgType.BINARY:
                self.other_frames.append(msg.type)  # the page sends none: tests check this
                continue
            dec.feed(msg.data)
            while not isinstance(ev := dec.next_event(), w.Sentinel):
                self.received.append(ev)
                await self.incoming.put(ev)
        return ws

    async def send(self, *messages: w.Message) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(b"".join(w.encode(m) for m in messages))

    async def expect(self, kind: type, timeout: float = 10.0) -> w.Message:
        """The next message of `kind`; Pings are answered, other kinds must not intervene."""
        async with asyncio.timeout(timeout):
            while True:
                m = await self.incoming.get()
                if isinstance(m, w.Ping):
                    assert self.ws is not None
                    await self.ws.send_bytes(w.encode(w.Pong(m.t)))
                    if kind is w.Ping:
                        return m
                    continue
                assert isinstance(m, kind), m
                return m

    def input_received(self) -> list[w.Message]:
        """Every Key and Pointer the page sent so far."""
        return [m for m in self.received if isinstance(m, w.Key | w.Pointer)]
