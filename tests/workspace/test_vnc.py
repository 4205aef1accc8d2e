"""Provider ``vnc``: an existing desktop is probed for its RFB banner with a short deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.workspace import Assignment, WorkspaceManager, WorkspaceUnavailable
from gateway.workspace.procs import free_tcp_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[int]:
    """A loopback TCP peer running ``handler``; every connection is closed afterwards."""
    tasks: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)


async def _banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"RFB 003.008\n")
    await writer.drain()
    await reader.read(100)


async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 400 <script>alert(1)</script>\r\n\r\n")
    await writer.drain()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)  # accepts, never speaks


@pytest.fixture
def manager(tmp_path: Path) -> WorkspaceManager:
    return WorkspaceManager(tmp_path, session_command="true", vnc_probe_timeout=0.5)


async def test_existing_desktop_endpoint_is_handed_out(manager: WorkspaceManager) -> None:
    async with serve(_banner) as port:
        ep = await manager.attach("t.sato", Assignment("vnc", "127.0.0.1", port, "pw"))
        assert (ep.host, ep.port, ep.password, ep.display) == ("127.0.0.1", port, "pw", None)
        assert [(r.user, r.provider, r.port, r.attached) for r in manager.status()] == [
            ("t.sato", "vnc", port, 1)
        ]
        manager.detach("t.sato")
        assert manager.status() == []


async def test_unreachable_desktop_gets_its_sentence(manager: WorkspaceManager) -> None:
    port = free_tcp_port()
    with pytest.raises(WorkspaceUnavailable) as caught:
        await manager.attach("t.sato", Assignment("vnc", "127.0.0.1", port))
    assert str(caught.value) == (
        f"The school desktop at 127.0.0.1:{port} is not answering: "
        "ask your school's IT lead to check it."
    )
    assert manager.status() == []


@pytest.mark.parametrize("handler", [_http, _silent], ids=["not-rfb", "silent"])
async def test_non_rfb_or_silent_peer_is_unavailable_within_deadline(
    manager: WorkspaceManager, handler: Handler
) -> None:
    async with serve(handler) as port:
        started = time.monotonic()
        with pytest.raises(WorkspaceUnavailable) as caught:
            await manager.attach("t.sato", Assignment("vnc", "127.0.0.1", port))
        assert time.monotonic() - started < 2.0
        assert "<script>" not in str(caught.value)
