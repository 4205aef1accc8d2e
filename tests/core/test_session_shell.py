"""The session's asyncio shell (gateway/live/session.py) with real parts: a real Xvnc desktop over
RFB, a real aiohttp WebSocket tunnel on loopback and the display codec's bytes. What the shell
owns: outputs carried out in order, each record written before its effect, a failed record ends
the session instead of letting the effect happen unrecorded, and the end's sequence (record,
receipt, End, close code 4000 + code, the broker told)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.audit.kinds import RedirectionBlocked, SessionEnded, TypedEvent
from gateway.display.framebuffer import Framebuffer
from gateway.display.pipeline import DisplayPipeline, SessionInfo
from gateway.live import session_events as ev
from gateway.live.session import ENCODE_FAILED, END_CLOSE_BASE, UNAUDITED, Limits, LiveSession
from gateway.rfb.connection import open_rfb
from gateway.wire import display as w
from gateway.wire import receipt
from tests.fixtures.desktops import Desktop

pytestmark = pytest.mark.slow


@dataclass
class Tunnel:
    session: LiveSession
    ws: aiohttp.ClientWebSocketResponse
    records: list[TypedEvent]
    ended: asyncio.Event
    fail_audit: list[bool] = field(default_factory=lambda: [False])

    async def messages(self, until: type) -> tuple[list[w.Message], list[str]]:
        """Display messages and text frames from the gateway up to a message of type `until`."""
        decoder = w.DisplayDecoder(w.Direction.TO_VIEWER)
        got: list[w.Message] = []
        texts: list[str] = []
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), 20)
            if msg.type == aiohttp.WSMsgType.TEXT:
                texts.append(msg.data)
                continue
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            decoder.feed(msg.data)
            while not isinstance(m := decoder.next_event(), w.Sentinel):
                got.append(m)
                if isinstance(m, until):
                    return got, texts


@pytest.fixture
async def tunnel(xvnc_desktop: Desktop) -> AsyncIterator[Tunnel]:
    fb = Framebuffer()
    rfb = await open_rfb(xvnc_desktop.host, xvnc_desktop.port, xvnc_desktop.password, fb,
                         clipboard=True)
    records: list[TypedEvent] = []
    ended = asyncio.Event()
    fail = [False]

    async def audit(event: TypedEvent) -> None:
        if fail[0]:
            raise OSError("No space left on device")
        records.append(event)

    session = LiveSession(
        id="s-shell", user_id="t.shell", name="試験 太郎", school=None, cert_serial=None,
        remote="127.0.0.1", posture="", started_at=datetime.now(UTC), rfb=rfb,
        pipeline=DisplayPipeline(fb, session=SessionInfo("s-shell", "test", w.HelloFlags.HELP)),
        limits=Limits(idle_timeout=900, max_duration=3600, reconnect_grace=45), audit=audit,
        on_end=lambda s: ended.set(),
        make_receipt=lambda work: json.dumps({"work": work}).encode())

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await session.attach(ws)
        return ws

    app = web.Application()
    app.router.add_get("/tunnel", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    session.start()
    try:
        async with aiohttp.ClientSession() as client:
            ws = await client.ws_connect(server.make_url("/tunnel"))
            t = Tunnel(session, ws, records, ended, fail)
            await ws.send_bytes(w.encode(w.Resume(w.VERSION)))
            yield t
            await ws.close()
    finally:
        if not session.ended:
            await session.end(w.EndCode.SERVER_SHUTDOWN, "The test is over.")
        await server.close()


async def test_the_viewer_gets_the_desktop_and_a_blocked_paste_is_recorded_not_forwarded(
        tunnel: Tunnel) -> None:
    got, _ = await tunnel.messages(until=w.Sync)
    assert isinstance(got[0], w.Hello) and (got[0].width, got[0].height) == (640, 480)
    await tunnel.ws.send_bytes(w.encode(w.ClipboardIn("from home")))
    await tunnel.ws.send_bytes(w.encode(w.Ping(7)))  # answered after the paste was handled
    await tunnel.messages(until=w.Pong)
    assert tunnel.records == [RedirectionBlocked("clipboard", direction="to-remote", bytes=9,
                                                 repeats=0, attempt=1)]
    assert not tunnel.session.ended


async def test_a_record_that_cannot_be_written_ends_the_session_instead(tunnel: Tunnel) -> None:
    await tunnel.messages(until=w.Sync)
    tunnel.fail_audit[0] = True  # the audit disk is full from now on
    await tunnel.ws.send_bytes(w.encode(w.Blocked(w.BlockedKind.PRINT)))
    got, texts = await tunnel.messages(until=w.End)
    assert got[-1] == w.End(w.EndCode.SERVER_SHUTDOWN, UNAUDITED)
    assert receipt.from_tunnel_frame(texts[-1]) is not None  # the receipt still goes out
    closed = await asyncio.wait_for(tunnel.ws.receive(), 10)
    assert closed.type == aiohttp.WSMsgType.CLOSE
    assert closed.data == END_CLOSE_BASE + w.EndCode.SERVER_SHUTDOWN
    await asyncio.wait_for(tunnel.ended.wait(), 10)
    assert tunnel.records == []  # nothing was recorded, and nothing took effect


async def test_an_officer_ends_it_record_then_receipt_then_end_then_close(tunnel: Tunnel) -> None:
    await tunnel.messages(until=w.Sync)
    await tunnel.session.end(w.EndCode.TERMINATED, "An officer ended this session: test.")
    got, texts = await tunnel.messages(until=w.End)
    assert got[-1] == w.End(w.EndCode.TERMINATED, "An officer ended this session: test.")
    [record] = tunnel.records
    assert isinstance(record, SessionEnded) and record.code == "terminated"
    work: dict[str, Any] = json.loads(json.loads(texts[-1])["file"])["work"]
    assert work["started_at"] == record.started_at and work["ended_at"] == record.ended_at
    closed = await asyncio.wait_for(tunnel.ws.receive(), 10)
    assert closed.data == END_CLOSE_BASE + w.EndCode.TERMINATED
    assert closed.extra == "An officer ended this session: test."
    await asyncio.wait_for(tunnel.ended.wait(), 10)  # the broker was told
    assert tunnel.session.ended
    await tunnel.session.end(w.EndCode.NORMAL, "twice")  # ending again does nothing
    assert len(tunnel.records) == 1


async def test_a_tunnel_not_resumed_within_the_grace_ends_the_session(tunnel: Tunnel) -> None:
    await tunnel.messages(until=w.Sync)
    tunnel.session.machine.limits = Limits(idle_timeout=900, max_duration=3600,
                                           reconnect_grace=1.0)
    await tunnel.ws.close()
    started = time.monotonic()
    await asyncio.wait_for(tunnel.ended.wait(), 10)
    assert 0.9 <= time.monotonic() - started < 5  # at the grace's deadline, not a tick later
    [record] = tunnel.records
    assert isinstance(record, SessionEnded) and record.code == "normal"
    assert record.reason == "The connection was lost and not resumed."


async def test_a_frame_that_cannot_be_encoded_ends_the_session(tunnel: Tunnel) -> None:
    """Not a frozen screen: the teacher is told, the end is recorded, the broker is told."""
    await tunnel.messages(until=w.Sync)

    def broken(job: object) -> bytes:
        raise ValueError("the encoder broke")

    tunnel.session.encode = broken
    tunnel.session.pipeline.max_unacked = 100  # the test acknowledges nothing
    tunnel.session.pipeline.fb.fill(0, 0, 300, 300, b"\x00\xff\x00\x00")  # a thread's work
    await tunnel.session.feed(ev.DesktopUpdated())
    got, _ = await tunnel.messages(until=w.End)
    assert got[-1] == w.End(w.EndCode.SERVER_SHUTDOWN, ENCODE_FAILED)
    await asyncio.wait_for(tunnel.ended.wait(), 10)
    [record] = tunnel.records
    assert isinstance(record, SessionEnded) and record.reason == ENCODE_FAILED
