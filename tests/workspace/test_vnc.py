"""Provider ``vnc``: an existing desktop is probed for its RFB banner with a short deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.rfb.connection import open_rfb
from gateway.rfb.errors import ServerRefused
from gateway.workspace import Assignment, InvalidAssignment, WorkspaceManager, WorkspaceUnavailable
from gateway.workspace.procs import free_tcp_port
from gateway.workspace.vnc_allow import VncAllowList
from tests.rfb.memsurface import MemorySurface

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


# ---------------------------------------------------------------- the allow-list


async def _none_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An RFB 3.8 server offering only security type None (no password at all)."""
    writer.write(b"RFB 003.008\n")
    await writer.drain()
    await reader.readexactly(12)
    writer.write(b"\x01\x01")
    await writer.drain()
    await reader.read(100)


async def test_address_off_the_allow_list_is_refused_before_any_connection(
    tmp_path: Path,
) -> None:
    contacted: list[int] = []

    async def spy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        contacted.append(1)

    allowed = VncAllowList.parse(["127.0.0.2:5900"])
    manager = WorkspaceManager(tmp_path, session_command="true", vnc_allowed=allowed)
    async with serve(spy) as port:
        with pytest.raises(InvalidAssignment) as caught:
            await manager.attach("t.sato", Assignment("vnc", "127.0.0.1", port))
    assert str(caught.value) == (
        f"The desktop address 127.0.0.1:{port} is not on this gateway's list of existing "
        "desktops (vnc_desktops in gateway.json): ask the board's administrator to add it."
    )
    assert contacted == [] and manager.status() == []


async def test_default_allow_list_is_this_hosts_loopback_only(manager: WorkspaceManager) -> None:
    for host in ("10.0.0.5", "192.168.1.10", "::ffff:10.0.0.5", "169.254.169.254"):
        with pytest.raises(InvalidAssignment, match="not on this gateway's list"):
            await manager.attach("t.sato", Assignment("vnc", host, 5900))
    allowed = VncAllowList.default()
    assert allowed.match("127.0.0.1", 5900) is not None
    assert allowed.match("::1", 5901) is not None


def test_allow_list_entries_parse_or_say_why() -> None:
    parsed = VncAllowList.parse(["10.0.0.5:5900", "10.1.0.0/16",
                                 {"address": "[fd00::7]:5901", "allow_none_auth": True}])
    assert parsed.match("10.0.0.5", 5900) is not None
    assert parsed.match("10.0.0.5", 5901) is None
    entry = parsed.match("10.1.200.3", 22)
    assert entry is not None and not entry.none_auth
    entry = parsed.match("fd00::7", 5901)
    assert entry is not None and entry.none_auth
    for bad, why in (("desktop.example:5900", "names are not allowed"),
                     ("10.0.0.5:0", "does not end in a TCP port"),
                     ({"address": "10.0.0.5", "allow_none_auth": "yes"}, "true or false")):
        with pytest.raises(InvalidAssignment, match=why):
            VncAllowList.parse([bad])


async def test_none_authentication_is_refused_unless_the_entry_allows_it(
    tmp_path: Path,
) -> None:
    async with serve(_none_only) as port:
        strict = WorkspaceManager(tmp_path, session_command="true")
        ep = await strict.attach("t.sato", Assignment("vnc", "127.0.0.1", port))
        assert ep.allow_none_auth is False
        with pytest.raises(ServerRefused, match="security type None"):
            await open_rfb(ep.host, ep.port, ep.password, MemorySurface(),
                           allow_none=ep.allow_none_auth, handshake_timeout=2)
        lenient = WorkspaceManager(tmp_path, session_command="true", vnc_allowed=VncAllowList.parse(
            [{"address": f"127.0.0.1:{port}", "allow_none_auth": True}]))
        ep = await lenient.attach("t.sato", Assignment("vnc", "127.0.0.1", port))
        assert ep.allow_none_auth is True
