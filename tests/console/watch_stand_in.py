"""A stand-in gateway for the console's Watch dialog: the real console pages (same handlers, same
CSP), a signed-in officer, one live session, and GET /api/v1/sessions/{id}/watch speaking what the
gateway speaks — a whole frame first, then live frames, End at the session's end — made by the
real display pipeline (tests/fixtures/recording.record_session). It records everything the page
sends on the socket (it must be nothing) and checks the Origin as the gateway does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType, web

from gateway.console import pages
from gateway.console.views import views_for
from gateway.wire import display as w
from tests.fixtures.recording import Recorded

SESSION = {"id": "sess-1", "user": "t-0042", "school": "東小学校",
           "started_at": "2027-04-07T08:15:00+00:00", "remote": "127.0.0.1",
           "posture": "ClamAV: up to date", "bytes_sent": 0, "frames_sent": 0}
OFFICER = {"user": "sec.stand", "name": "代役 担当", "role": "officer", "school": None,
           "csrf": "x" * 43, "expires_at": "2099-01-01T00:00:00+00:00",
           "must_change_password": False, "views": views_for("officer")}


class WatchStandIn:
    def __init__(self, rec: Recorded) -> None:
        self.rec = rec
        self.origin = ""
        self.received: list[tuple[WSMsgType, Any]] = []  # everything the page sent
        self.connections = 0
        self.closed = asyncio.Event()  # the page closed its socket
        self.release = asyncio.Event()  # send the remaining frames
        self.finish = asyncio.Event()  # send End and close
        self.first_frames = 3
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/console/", pages.index)
        app.router.add_get("/console/static/{name}", pages.static)
        app.router.add_get("/console/viewer/{name}", pages.viewer_module)
        app.router.add_get("/console/session", self.session)
        app.router.add_get("/api/v1/sessions", self.sessions)
        app.router.add_get("/api/v1/sessions/{session_id}/watch", self.watch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.origin = f"http://127.0.0.1:{port}"
        return self.origin

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def session(self, request: web.Request) -> web.Response:
        return web.json_response(OFFICER)

    async def sessions(self, request: web.Request) -> web.Response:
        return web.json_response({"sessions": [SESSION]})

    async def watch(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Origin") != self.origin:
            raise web.HTTPForbidden()
        ws = web.WebSocketResponse(max_msg_size=4096)
        await ws.prepare(request)
        self.connections += 1
        reader = asyncio.create_task(self._read(ws))
        frames = [data for _, data in self.rec.sent]
        try:
            for data in frames[: self.first_frames]:
                await ws.send_bytes(data)
            await _either(self.release, self.closed)
            for data in frames[self.first_frames:]:
                if ws.closed:
                    break
                await ws.send_bytes(data)
            await _either(self.finish, self.closed)
            if not ws.closed:
                end = w.End(w.EndCode.TERMINATED, "An officer ended this session: <b>授業終了</b>")
                await ws.send_bytes(w.encode(end))
                await ws.close()
        finally:
            await reader
        return ws

    async def _read(self, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            self.received.append((msg.type, msg.data))
        self.closed.set()


async def _either(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
