"""The read path (issue 11): the socket reads into the parser's buffer, Raw blits from a view.

The buffer against a plain bytes model under random feeds, reads in place, commits and
rollbacks (with storage small enough to move and grow); Raw drawn from a read-only view; and
the shell on a real loopback socket: a flood the consumer does not read stays bounded in
memory and arrives intact, the hook sees every byte, an idle server times out as idle.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from gateway.rfb.buffer import ReceiveBuffer
from gateway.rfb.client import RfbClient
from gateway.rfb.connection import open_rfb
from gateway.rfb.encodings import Encoding
from gateway.rfb.errors import LocalProtocolError, RfbTimeout
from gateway.rfb.events import UpdateDone
from gateway.rfb.stream import READ_SIZE

from .helpers import ALL_ENCODINGS, drain, handshake_38_none, rect, update
from .memsurface import MemorySurface
from .pump import listening


@pytest.mark.parametrize("seed", range(40))
def test_the_buffer_behaves_as_a_bytes_model_whatever_the_storage_does(seed: int) -> None:
    rng = random.Random(seed)
    buf = ReceiveBuffer(capacity=rng.choice([1, 16, 100]))
    data = b""  # the model: every byte received but not committed
    pos = 0
    for _ in range(400):
        op = rng.randrange(6)
        if op == 0:
            chunk = rng.randbytes(rng.randrange(0, 300))
            buf.feed(chunk)
            data += chunk
        elif op == 1:  # a socket's recv_into, filling part of the room it was given
            chunk = rng.randbytes(rng.randrange(1, 300))
            room = buf.get_buffer(len(chunk))
            assert len(room) >= len(chunk) and not room.readonly
            room[: len(chunk)] = chunk
            buf.buffer_updated(len(chunk))
            data += chunk
        elif op in (2, 3):
            n = rng.randrange(0, 5000 if rng.random() < 0.1 else 200)
            got = buf.consume_exactly(n) if op == 2 else buf.consume_view(n)
            if pos + n > len(data):
                assert got is None
            else:
                assert got is not None and bytes(got) == data[pos : pos + n]
                if op == 3:
                    assert isinstance(got, memoryview) and got.readonly
                pos += n
        elif op == 4:
            buf.commit()
            data, pos = data[pos:], 0
        else:
            buf.rollback()
            pos = 0
        assert len(buf) == len(data) - pos
        assert buf.uncommitted == len(data)


def test_room_handed_out_counts_only_what_was_written() -> None:
    buf = ReceiveBuffer(capacity=8)
    buf.feed(b"abc")
    assert buf.consume_exactly(2) == b"ab"
    room = buf.get_buffer(64)  # grows; the uncommitted "abc" moves with the read position
    room[:2] = b"de"
    buf.buffer_updated(2)
    assert buf.consume_exactly(3) == b"cde"
    buf.rollback()
    assert buf.consume_exactly(5) == b"abcde"
    with pytest.raises(ValueError):
        buf.buffer_updated(buf.capacity + 1)


def test_the_storage_shrinks_back_once_a_big_message_is_committed() -> None:
    buf = ReceiveBuffer(capacity=1024)
    buf.feed(bytes(100_000))  # one bounded message that needs the room
    assert buf.capacity >= 100_000
    assert buf.consume_exactly(100_000) is not None
    buf.commit()
    buf.get_buffer(512)
    assert buf.capacity == 1024


def test_no_room_to_receive_after_eof() -> None:
    client = RfbClient(MemorySurface())
    client.feed(b"")
    with pytest.raises(LocalProtocolError, match="after EOF"):
        client.get_buffer(1)


class ViewCheckingSurface(MemorySurface):
    def __init__(self) -> None:
        super().__init__()
        self.kinds: set[tuple[type, bool]] = set()

    def blit(self, x: int, y: int, w: int, h: int, data: bytes | memoryview) -> None:
        self.kinds.add((type(data), isinstance(data, memoryview) and data.readonly))
        super().blit(x, y, w, h, bytes(data))


def test_raw_rows_are_drawn_from_a_read_only_view_of_the_received_bytes() -> None:
    surface = ViewCheckingSurface()
    client = RfbClient(surface, encodings=ALL_ENCODINGS)
    client.feed(handshake_38_none(40, 30))
    drain(client)
    pixels = bytes(range(256)) * (40 * 30 * 4 // 256) + bytes(40 * 30 * 4 % 256)
    wire = update(rect(0, 0, 40, 30, Encoding.RAW, pixels))
    for i in range(0, len(wire), 333):  # rows split across feeds
        client.feed(wire[i : i + 333])
        room = client.get_buffer(1)  # and a read in place that brings nothing yet
        client.buffer_updated(0)
        assert len(room) >= 1
        drain(client)
    assert surface.kinds == {(memoryview, True)}
    assert bytes(surface.data) == pixels


# -- the shell on a real socket -------------------------------------------------------------------

W, H, FRAMES = 1024, 768, 16  # 3 MiB a frame, 48 MiB in all


def frame(i: int) -> bytes:
    return update(rect(0, 0, W, H, Encoding.RAW, bytes((i, i + 1, i + 2, 0)) * (W * H)))


class Flood:
    def __init__(self) -> None:
        self.script = handshake_38_none(W, H) + b"".join(frame(i) for i in range(FRAMES))
        self.transport: asyncio.WriteTransport | None = None
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.transport = writer.transport  # type: ignore[assignment]
        writer.write(self.script)  # asyncio holds what the socket does not take
        while await reader.read(65536):
            pass
        writer.close()

    @property
    def delivered(self) -> int:
        assert self.transport is not None
        return len(self.script) - self.transport.get_write_buffer_size()


@pytest.fixture
async def flood() -> AsyncIterator[Flood]:
    srv = Flood()
    async with listening(srv.handle) as srv.port:
        yield srv


async def test_a_flood_nobody_reads_stays_bounded_then_arrives_intact(flood: Flood) -> None:
    received: list[bytes] = []
    surface = MemorySurface()
    conn = await open_rfb("127.0.0.1", flood.port, None, surface, on_receive=received.append)
    events = conn.events()
    try:
        assert isinstance(await anext(events), UpdateDone)  # frame 0 drawn; nobody reads now
        await asyncio.sleep(0.5)
        assert conn.client._buf.capacity <= 1024 * 1024  # a message's tail plus two reads
        assert sum(map(len, received)) <= 4 * READ_SIZE + len(flood.script) // FRAMES
        assert flood.delivered < len(flood.script) // 2  # the kernel's buffers, not 48 MiB
        for _ in range(FRAMES - 1):  # the rest arrives, in order, intact
            assert isinstance(await anext(events), UpdateDone)
        assert surface.pixel(W - 1, H - 1) == bytes((FRAMES - 1, FRAMES, FRAMES + 1, 0))
        assert b"".join(received) == flood.script
    finally:
        await events.aclose()
        await conn.close()

async def test_a_server_silent_after_an_update_times_out_as_idle(flood: Flood) -> None:
    flood.script = handshake_38_none(8, 8) + update()
    conn = await open_rfb("127.0.0.1", flood.port, None, MemorySurface(), idle_timeout=0.3)
    got = []
    with pytest.raises(RfbTimeout, match=r"no data from the server for 0.3s while idle"):
        async for event in conn.events():
            got.append(event)
    assert got == [UpdateDone(0)]
    assert conn.closed
