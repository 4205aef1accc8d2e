"""Process plumbing for desktops: free ports, the RFB banner probe, and killing whole sessions.

Attacker-controlled here: bytes a VNC server sends to `probe_rfb` — only the 12-byte version
banner is read, under a deadline. Process lookups read /proc and never trust names, only ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

RFB_BANNER_LEN = 12
_RFB_BANNER = re.compile(rb"RFB \d{3}\.\d{3}\n")
_POLL = 0.05
_PROC = Path("/proc")


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free on ``host`` now (callers retry if someone takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_rfb_banner(data: bytes) -> bool:
    return _RFB_BANNER.fullmatch(data) is not None


async def probe_rfb(host: str, port: int, timeout: float) -> bytes | None:
    """Connect, read the server's version banner and hang up; None if nothing valid in time."""
    return await _probe(lambda: asyncio.open_connection(host, port), timeout)


async def probe_rfb_socket(path: Path, timeout: float) -> bytes | None:
    """`probe_rfb` over a Unix socket (a gateway-started Xvnc)."""
    return await _probe(lambda: asyncio.open_unix_connection(str(path)), timeout)


async def _probe(
    connect: Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]],
    timeout: float,
) -> bytes | None:
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await connect()
            banner = await reader.readexactly(RFB_BANNER_LEN)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return banner if is_rfb_banner(banner) else None


async def wait_rfb_socket(
    path: Path, deadline: float, proc: asyncio.subprocess.Process
) -> bytes | None:
    """Poll until the Unix socket answers with an RFB banner, ``proc`` exits, or ``deadline``."""
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            return None
        if path.exists():
            banner = await probe_rfb_socket(path, max(0.05, min(1.0, deadline - time.monotonic())))
            if banner is not None:
                return banner
        await asyncio.sleep(_POLL)
    return None


async def wait_path(path: Path, deadline: float, proc: asyncio.subprocess.Process) -> bool:
    """Poll until ``path`` exists (a socket a child creates), the child exits, or ``deadline``."""
    while time.monotonic() < deadline:
        if await asyncio.to_thread(path.exists):
            return True
        if proc.returncode is not None:
            return False
        await asyncio.sleep(_POLL)
    return False


def _stat_fields(pid_dir: Path) -> list[str] | None:
    try:
        stat = (pid_dir / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may contain anything, so split after the last ')'.
    return stat.rpartition(")")[2].split()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    found = []
    for pid_dir in _PROC.iterdir():
        if not pid_dir.name.isdigit():
            continue
        fields = _stat_fields(pid_dir)
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(pid_dir.name))
    return found


def marked_processes(marker: bytes) -> list[int]:
    """Live processes whose environment holds ``marker`` (a NAME=VALUE unique to a session)."""
    needle = b"\0" + marker + b"\0"
    found = []
    for pid_dir in _PROC.iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            environ = (pid_dir / "environ").read_bytes()
        except OSError:
            continue
        fields = _stat_fields(pid_dir)
        if needle in b"\0" + environ and fields and fields[0] != "Z":
            found.append(int(pid_dir.name))
    return found


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal_pids(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def kill_group(pgid: int, grace: float) -> None:
    """SIGTERM the whole group, wait up to ``grace`` s for it to empty, then SIGKILL the rest."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while await asyncio.to_thread(group_members, pgid):
        if time.monotonic() >= deadline:
            _signal_group(pgid, signal.SIGKILL)
            return
        await asyncio.sleep(_POLL)


async def kill_marked(marker: bytes, grace: float) -> list[int]:
    """Kill processes that left the session's group (daemonised, setsid) but kept its marker."""
    pids = await asyncio.to_thread(marked_processes, marker)
    if not pids:
        return []
    _signal_pids(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while remaining := await asyncio.to_thread(marked_processes, marker):
        if time.monotonic() >= deadline:
            _signal_pids(remaining, signal.SIGKILL)
            break
        await asyncio.sleep(_POLL)
    return pids


async def stop_process(proc: asyncio.subprocess.Process, grace: float) -> None:
    """Terminate one child, SIGKILL it after ``grace`` s, and reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    await proc.wait()
