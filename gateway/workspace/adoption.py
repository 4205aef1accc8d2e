"""Desktops that outlive a gateway process: the registry row, re-adoption, and clean-up.

A gateway records each desktop it starts (`record_of`) in the Store; the next gateway on the same
host — the same node restarted, or another node sharing the database — re-adopts it (`adopt`) if
both rooms' PID 1 still run with the recorded start times (a reused pid starts later) and Xvnc
answers its Unix socket with an RFB banner; otherwise it ends what is left of it (`end_recorded`).

Attacker-controlled here: the processes in the rooms (the teacher's) — a pid is trusted only with
its start time, Xvnc's answer is read only as the 12-byte banner under a deadline, and the
password is read back from the rfbauth file the gateway wrote, never from the desktop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.store.desktops import DesktopRecord
from gateway.workspace import credentials, egress, procs, quota, quota_watch, sandbox
from gateway.workspace.confinement import Confinement, HomeMode, Limits
from gateway.workspace.desktop import GRACE, Account, DesktopSpec, XvncDesktop, remove_runtime
from gateway.workspace.netns import NetNamespace

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0  # seconds an adopted Xvnc gets to answer with its banner


class DesktopStore(Protocol):
    """The Store's desktops methods (gateway.store.base.Store)."""

    def put_desktop(self, record: DesktopRecord) -> None: ...
    def list_desktops(self, host: str) -> list[DesktopRecord]: ...
    def get_desktop(self, user_id: str) -> DesktopRecord | None: ...
    def claim_desktop(self, user_id: str, node: str) -> None: ...
    def drop_desktop(self, user_id: str, runtime_dir: str | None = None) -> None: ...


async def _nothing(*_: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class DesktopRegistry:
    """Where this gateway records its desktops, who it is, and how it audits adoption.

    ``on_adopted(record)`` and ``on_forgotten(record, why)`` are awaited before the change
    takes effect (audit first).
    """

    store: DesktopStore
    node: str
    host: str = socket.gethostname()
    on_adopted: Callable[[DesktopRecord], Awaitable[None]] = _nothing
    on_forgotten: Callable[[DesktopRecord, str], Awaitable[None]] = _nothing


def record_of(desktop: XvncDesktop, node: str, host: str) -> DesktopRecord:
    spec, server, session = desktop.spec, desktop.server, desktop.session
    assert server is not None and session is not None
    assert server.init_pid is not None and session.init_pid is not None
    confinement = desktop.confinement
    return DesktopRecord(
        user_id=spec.user_id, node=node, host=host, display=spec.display,
        server_pid=server.init_pid, server_start=server.init_start or 0,
        session_pid=session.init_pid, session_start=session.init_start or 0,
        runtime_dir=str(desktop.runtime_dir), rfb_socket=str(desktop.rfb_socket),
        rfbauth=str(desktop.rfbauth), home=str(spec.home),
        home_mode=confinement.home_mode if confinement is not None else "none",
        uid=spec.account.uid, gid=spec.account.gid, switch=spec.account.switch,
        sandbox_mode=spec.sandbox_mode, marker=desktop.marker, started_at=desktop.started_at)


def alive_rooms(record: DesktopRecord) -> tuple[sandbox.Sandbox | None, sandbox.Sandbox | None]:
    """Both rooms of the record, each None unless its PID 1 runs with the recorded start time."""
    mode = "root" if record.sandbox_mode == "root" else "user"
    return (sandbox.adopt(record.server_pid, record.server_start, mode),
            sandbox.adopt(record.session_pid, record.session_start, mode))


async def why_not_adoptable(record: DesktopRecord) -> str:
    """"" when the desktop can be re-adopted, else a short reason (for the log and the audit)."""
    server, session = await asyncio.to_thread(alive_rooms, record)
    if server is None:
        return "Xvnc's room is not running"
    if session is None:
        return "the session's room is not running"
    if await procs.probe_rfb_socket(Path(record.rfb_socket), PROBE_TIMEOUT) is None:
        return "Xvnc does not answer on its socket"
    return ""


async def adopt(record: DesktopRecord, *, user_id: str, session_command: Sequence[str],
                geometry: str, locale: str, limits: Limits) -> XvncDesktop | None:
    """The recorded desktop as a running `XvncDesktop` this gateway manages, or None."""
    if await why_not_adoptable(record):
        return None
    server, session = await asyncio.to_thread(alive_rooms, record)
    if server is None or session is None:
        return None
    try:
        password = await asyncio.to_thread(credentials.read_vnc_password, Path(record.rfbauth))
    except (OSError, ValueError) as exc:
        log.warning("desktop :%d of user %s: its password file cannot be read (%s)",
                    record.display, user_id, exc)
        return None
    mode = "root" if record.sandbox_mode == "root" else "user"
    spec = DesktopSpec(
        user_id=user_id, display=record.display, home=Path(record.home),
        account=Account(user_id, record.uid, record.gid, record.switch),
        session_command=tuple(session_command), geometry=geometry, locale=locale,
        limits=limits, sandbox_mode=mode)
    desktop = XvncDesktop(spec=spec, password=password, runtime_dir=Path(record.runtime_dir),
                          marker=record.marker, started_at=record.started_at,
                          server=server, session=session)
    desktop.confinement = await _reconfine(record, desktop, limits)
    log.info("desktop :%d of user %s re-adopted (Xvnc room pid %d)", record.display, user_id,
             record.server_pid)
    return desktop


async def _reconfine(record: DesktopRecord, desktop: XvncDesktop, limits: Limits) -> Confinement:
    """What the dead gateway held for the desktop: the namespace's relays, the usage watcher."""
    home_mode: HomeMode = record.home_mode if record.home_mode in ("image", "watch") \
        else "none"  # type: ignore[assignment]
    confinement = Confinement(f"desktop :{record.display}", Path(record.home), home_mode)
    session = desktop.session
    if limits.isolated and session is not None and session.init_pid is not None:
        try:
            fd = os.open(f"/proc/{session.init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.error("desktop :%d: its network namespace cannot be opened (%s): no relays",
                      record.display, exc)
        else:
            confinement.netns = NetNamespace(fd)
            listeners = await egress.resolve(limits.egress or ())
            confinement.listeners = listeners
            confinement.relay = egress.EgressRelay(confinement.label)
            try:
                await confinement.relay.start(confinement.netns, listeners)
            except OSError as exc:  # an address the namespace's lo does not have any more
                log.error("desktop :%d: relays not restored (%s)", record.display, exc)
    if home_mode == "watch" and limits.home_quota is not None:
        confinement.watcher = asyncio.create_task(
            quota_watch.watch(Path(record.home), limits.home_quota, confinement.label))
    return confinement


async def end_recorded(record: DesktopRecord) -> None:
    """End whatever is left of a recorded desktop no gateway manages: its rooms (only pids
    whose start time matches), escapees carrying its marker, its mounts and its runtime dir."""
    for room in await asyncio.to_thread(alive_rooms, record):
        if room is not None:
            await room.kill(GRACE)
    await procs.kill_marked(record.marker.encode(), GRACE)
    runtime = Path(record.runtime_dir)
    bound = runtime / "home"
    with contextlib.suppress(quota.QuotaUnavailable, OSError):
        if runtime.parent == Path(tempfile.gettempdir()) \
                and await asyncio.to_thread(quota.mounted, bound):
            await asyncio.to_thread(quota.unmount_home, bound)
    if record.home_mode == "image":
        with contextlib.suppress(quota.QuotaUnavailable, OSError):
            if await asyncio.to_thread(quota.mounted, Path(record.home)):
                await asyncio.to_thread(quota.unmount_home, Path(record.home))
    # Only a directory shaped like one `_prepare_files` made (a row is data, not a command).
    if runtime.parent == Path(tempfile.gettempdir()) \
            and runtime.name.startswith("staffroom-desktop"):
        await asyncio.to_thread(remove_runtime, runtime)



async def end_all_recorded(store: DesktopStore, host: str) -> list[str]:
    """End and forget every desktop recorded on ``host`` (no gateway may be running there):
    for tests and maintenance. Returns whose."""
    ended = []
    for record in store.list_desktops(host):
        await end_recorded(record)
        store.drop_desktop(record.user_id, record.runtime_dir)
        ended.append(record.user_id)
    return ended
