"""A hostile RFB server on loopback: the shell closes with a clear error; the loop lives on."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from gateway.rfb.connection import open_rfb
from gateway.rfb.encodings import Encoding
from gateway.rfb.errors import RemoteProtocolError, RfbError, RfbTimeout
from gateway.rfb.events import Bell, Closed, UpdateDone

from .helpers import handshake_38_none, rect, server_init, update
from .memsurface import MemorySurface
from .pump import listening

HELLO = handshake_38_none(64, 48)


@dataclass
class EvilServer:
    script: bytes = b""
    hang_up: bool = False
    port: int = 0
    received: bytearray = field(default_factory=bytearray)
    saw_eof: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(self.script)
        await writer.drain()
        if self.hang_up:
            writer.close()
            self.saw_eof.set()
            return
        while data := await reader.read(65536):
            self.received += data
        self.saw_eof.set()
        writer.close()


@pytest.fixture
async def evil() -> AsyncIterator[EvilServer]:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    srv = EvilServer()
    async with listening(srv.handle) as srv.port:
        yield srv
    assert errors == [], "the event loop saw an unhandled exception"


async def run_session(srv: EvilServer, **kwargs: object) -> list[object]:
    conn = await open_rfb("127.0.0.1", srv.port, None, MemorySurface(), **kwargs)  # type: ignore[arg-type]
    await conn.request_update(False)
    return [event async for event in conn.events()]


async def assert_closed_with(
    srv: EvilServer, error: type[RfbError], match: str, **kw: object
) -> None:
    with pytest.raises(error, match=match):
        await run_session(srv, **kw)
    await asyncio.wait_for(srv.saw_eof.wait(), 5)  # we closed the socket


async def test_huge_server_init(evil: EvilServer) -> None:
    evil.script = b"RFB 003.008\n\x01\x01\x00\x00\x00\x00" + server_init(60000, 60000)
    await assert_closed_with(evil, RemoteProtocolError, "60000x60000 exceeds")


async def test_rect_outside_the_framebuffer(evil: EvilServer) -> None:
    evil.script = HELLO + update(rect(0, 40, 64, 10, Encoding.RAW, bytes(64 * 10 * 4)))
    await assert_closed_with(evil, RemoteProtocolError, "lies outside")


async def test_two_gigabyte_cut_text(evil: EvilServer) -> None:
    evil.script = HELLO + struct.pack(">B3xI", 3, 2**31) + b"x" * 1000
    await assert_closed_with(evil, RemoteProtocolError, "ServerCutText of 2147483648")


async def test_zlib_bomb(evil: EvilServer) -> None:
    bomb = zlib.compressobj(9)
    data = bomb.compress(bytes(2_000_000)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    evil.script = HELLO + update(
        rect(0, 0, 64, 48, Encoding.ZRLE, struct.pack(">I", len(data)) + data)
    )
    await assert_closed_with(evil, RemoteProtocolError, "inflates past")


async def test_half_a_message_then_silence(evil: EvilServer) -> None:
    evil.script = HELLO + update(rect(0, 0, 64, 48, Encoding.RAW, bytes(1000)))
    await assert_closed_with(evil, RfbTimeout, "middle of a message", message_timeout=0.3)


async def test_stalled_handshake(evil: EvilServer) -> None:
    evil.script = b"RFB 003.008\n"
    with pytest.raises(RfbTimeout, match="handshake"):
        await open_rfb("127.0.0.1", evil.port, None, MemorySurface(), handshake_timeout=0.3)
    await asyncio.wait_for(evil.saw_eof.wait(), 5)


async def test_hooks_see_both_directions_even_on_failure(evil: EvilServer) -> None:
    evil.script = HELLO + b"\x02" + b"\x09"  # Bell, then an unknown message type
    sent: list[bytes] = []
    received: list[bytes] = []
    with pytest.raises(RemoteProtocolError, match="unknown server message type 9"):
        await run_session(evil, on_send=sent.append, on_receive=received.append)
    assert b"".join(received) == evil.script
    assert b"".join(sent).startswith(b"RFB 003.008\n\x01\x01")
    await asyncio.wait_for(evil.saw_eof.wait(), 5)
    assert bytes(evil.received) == b"".join(sent)


async def test_good_session_then_eof(evil: EvilServer) -> None:
    evil.script = HELLO + update() + b"\x02"
    events = await asyncio.wait_for(_until_closed(evil), 5)
    assert events[:2] == [UpdateDone(0), Bell()]


async def _until_closed(evil: EvilServer) -> list[object]:
    conn = await open_rfb("127.0.0.1", evil.port, None, MemorySurface())
    events = []
    async for event in conn.events():
        events.append(event)
        if isinstance(event, Bell):
            await conn.close()
            break
    return events


async def test_server_hanging_up_mid_update_is_a_clean_closed(evil: EvilServer) -> None:
    evil.script = HELLO + update(rect(0, 0, 4, 4, Encoding.RAW, bytes(10)))
    evil.hang_up = True
    events = await asyncio.wait_for(run_session(evil), 5)
    assert events == [Closed("server closed the connection in the middle of a message")]


async def test_cancelling_a_reader_leaks_nothing(evil: EvilServer) -> None:
    evil.script = HELLO
    conn = await open_rfb("127.0.0.1", evil.port, None, MemorySurface())

    async def consume() -> None:
        async for _ in conn.events():
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await conn.close()
    await asyncio.wait_for(evil.saw_eof.wait(), 5)
