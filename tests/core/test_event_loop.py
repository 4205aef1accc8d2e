"""gateway.event_loop: the gateway runs uvloop where it is installed and asyncio's loop when
STAFFROOM_EVENT_LOOP=asyncio says so (or uvloop is missing); a wrong setting is one sentence;
and what the gateway asks of its loop works on both, with real sockets and processes: the RFB
stream reading a desktop's updates, and the sandbox's command started with its umask, its
passed descriptor and its own session."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest

from gateway.event_loop import ENV, EventLoopUnavailable, choose
from gateway.rfb.connection import open_rfb
from gateway.workspace.sandbox import umask_argv
from tests.rfb.helpers import bgrx, handshake_38_none, rect, update
from tests.rfb.memsurface import MemorySurface

LOOPS = ["asyncio", "uvloop"]


def test_uvloop_by_default_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    choice = choose()
    assert choice.name.startswith("uvloop ") and choice.factory is not None
    loop = choice.factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_asyncio_when_asked_or_when_uvloop_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "asyncio")
    assert choose().name == "asyncio" and choose().factory is None
    assert choose().run(_which_loop()) == "asyncio"
    monkeypatch.delenv(ENV)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert choose().name == "asyncio"
    with pytest.raises(EventLoopUnavailable, match="uvloop is not installed"):
        choose("uvloop")


def test_a_wrong_setting_is_one_sentence() -> None:
    with pytest.raises(EventLoopUnavailable) as e:
        choose("tokio")
    assert str(e.value) == ("STAFFROOM_EVENT_LOOP must be uvloop or asyncio, not 'tokio': unset "
                            "it to let the gateway choose.")


async def _which_loop() -> str:
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") \
        else "asyncio"


@pytest.mark.parametrize("loop", LOOPS)
def test_the_rfb_stream_reads_a_desktop_on_either_loop(loop: str) -> None:
    """A real TCP desktop (its handshake, then one update of two Raw rectangles) read through
    RfbStream: uvloop's transports are not asyncio.Transport subclasses."""
    pixels = bgrx(200, 100, 50) * 6

    async def main() -> tuple[str, tuple[int, int, int]]:
        hung_up = asyncio.Event()

        async def desktop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(handshake_38_none(64, 48))
                await reader.readexactly(12 + 1 + 1)  # version, security type, ClientInit
                writer.write(update(rect(1, 1, 3, 2, 0, pixels), rect(10, 10, 3, 2, 0, pixels)))
                await writer.drain()
                await reader.read()  # until the client hangs up
            finally:
                writer.close()
                await writer.wait_closed()
                hung_up.set()

        server = await asyncio.start_server(desktop, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        surface = MemorySurface()
        conn = await open_rfb("127.0.0.1", port, None, surface)
        try:
            async for event in conn.events():
                if type(event).__name__ == "UpdateDone":
                    break
        finally:
            await conn.close()
            await asyncio.wait_for(hung_up.wait(), 10)
            server.close()
            await server.wait_closed()
        return await _which_loop(), surface.rgb(11, 11)

    which, colour = choose(loop).run(main())
    assert which == loop
    assert colour == (200, 100, 50)


@pytest.mark.parametrize("loop", LOOPS)
def test_the_rooms_command_starts_with_its_umask_on_either_loop(loop: str, tmp_path: Path
                                                                ) -> None:
    """sandbox.start's way of starting a room, without bwrap: the umask set by the command
    itself (uvloop takes no ``umask`` keyword), a passed descriptor, its own session."""
    read_fd, write_fd = os.pipe()
    made = tmp_path / "made-inside"

    async def main() -> tuple[bytes, int]:
        script = f"umask; echo passed > /dev/fd/{write_fd}; touch {made}; ps -o sid= -p $$"
        proc = await asyncio.create_subprocess_exec(
            *umask_argv(0o077, ["/bin/sh", "-c", script]), pass_fds=(write_fd,),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            env={"PATH": os.environ["PATH"]}, cwd="/", start_new_session=True)
        out, _ = await proc.communicate()
        return out, proc.pid

    try:
        out, pid = choose(loop).run(main())
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as r:
        assert r.read() == b"passed\n"
    mask, sid = out.split()
    assert mask == b"0077"
    assert int(sid) == pid  # exec'd in place: the shell's PID leads its own session
    assert stat.S_IMODE(made.stat().st_mode) == 0o600


def test_a_umask_is_a_file_mode_mask() -> None:
    with pytest.raises(ValueError, match="not a file mode mask"):
        umask_argv(0o1000, ["true"])
