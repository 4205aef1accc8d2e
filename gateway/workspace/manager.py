"""The broker's one door to workspaces: attach/detach accounting, idle stop, admin status.

Attacker-controlled here: user ids and attach/detach calls driven by teachers' sessions — user
ids are checked before use, counts never go below zero, each user has at most one desktop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.workspace.adoption import DesktopRegistry
from gateway.workspace.base import Assignment, Endpoint, ProviderName, check_user_id
from gateway.workspace.confinement import QuotaBackend
from gateway.workspace.settings import DEFAULT_HOME_QUOTA, SettingsLookup
from gateway.workspace.uids import UidRange, UidStore
from gateway.workspace.vnc import VncProvider
from gateway.workspace.vnc_allow import VncAllowList
from gateway.workspace.xvnc import XvncProvider

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Usage:
    """How many sessions show a user's workspace, and since when none has (monotonic s)."""

    attached: int = 0
    idle_since: float | None = None


@dataclass(frozen=True, slots=True)
class WorkspaceStatus:
    """One row of the admin listing."""

    user: str
    provider: ProviderName
    display: str | None
    port: int
    started: float | None  # wall-clock epoch seconds; None for an existing desktop
    attached: int


def idle_desktops(
    usage: Mapping[str, Usage], running: Iterable[str], now: float, stop_after: float
) -> list[str]:
    """Users whose desktop has had nobody attached for at least ``stop_after`` seconds."""
    victims = []
    for user in running:
        entry = usage.get(user, Usage())
        if entry.attached > 0:
            continue
        if entry.idle_since is None or now - entry.idle_since >= stop_after:
            victims.append(user)
    return sorted(victims)


class WorkspaceManager:
    """Attach sessions to per-user Xvnc desktops or existing desktops; stop what is unused.

    ``session_command`` … ``printing`` and ``stop_unattached_after`` apply to every desktop
    unless ``settings_for`` gives a user's own (gateway.workspace.settings)."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        session_command: Sequence[str] | str,
        geometry: str = "1280x800",
        stop_unattached_after: float = 900.0,
        clipboard: bool = False,
        desktop_uids: UidRange | str | None = None,
        uid_store: UidStore | None = None,
        home_url: str = "",
        vnc_allowed: VncAllowList | None = None,
        sandbox_mode: Literal["auto", "user", "root"] = "auto",
        input_method: bool = True,
        clock: Callable[[], float] = time.monotonic,
        vnc_probe_timeout: float = 3.0,
        display_base: int = 40,
        allowed_hosts: Sequence[str] = (),
        isolate_network: bool = True,
        home_quota_bytes: int | None = DEFAULT_HOME_QUOTA,
        quota_backend: QuotaBackend = "auto",
        printing: bool = False,
        registry: DesktopRegistry | None = None,
        settings_for: SettingsLookup | None = None,
    ) -> None:
        self.xvnc = XvncProvider(
            data_dir,
            session_command=session_command,
            geometry=geometry,
            clipboard=clipboard,
            desktop_uids=desktop_uids,
            uid_store=uid_store,
            home_url=home_url,
            sandbox_mode=sandbox_mode,
            input_method=input_method,
            display_base=display_base,
            allowed_hosts=allowed_hosts,
            isolate_network=isolate_network,
            home_quota_bytes=home_quota_bytes,
            quota_backend=quota_backend,
            printing=printing,
            registry=registry,
            settings_for=settings_for,
        )
        self.vnc = VncProvider(probe_timeout=vnc_probe_timeout,
                               allowed=vnc_allowed or VncAllowList.default())
        self.stop_unattached_after = stop_unattached_after
        self._clock = clock
        self._usage: dict[str, Usage] = {}
        self._vnc_endpoints: dict[str, Endpoint] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def attach(self, user_id: str, assignment: Assignment | None = None) -> Endpoint:
        """Endpoint of the user's workspace (starting or reusing their desktop); counts them in."""
        check_user_id(user_id)
        assignment = assignment or Assignment()
        async with self._lock(user_id):
            if assignment.provider == "vnc":
                endpoint = await self.vnc.attach(user_id, assignment)
                self._vnc_endpoints[user_id] = endpoint
            else:
                endpoint = await self.xvnc.attach(user_id, assignment)
            entry = self._usage.get(user_id, Usage())
            self._usage[user_id] = Usage(entry.attached + 1, None)
            return endpoint

    def detach(self, user_id: str) -> None:
        """A session stopped showing the workspace; the idle clock starts at zero attachments."""
        entry = self._usage.get(user_id)
        if entry is None or entry.attached == 0:
            return
        attached = entry.attached - 1
        self._usage[user_id] = Usage(attached, self._clock() if attached == 0 else None)
        if attached == 0:
            self._vnc_endpoints.pop(user_id, None)

    async def stop(self, user_id: str) -> None:
        """Stop the user's desktop now (admin action or end of a school's day)."""
        async with self._lock(user_id):
            await self.xvnc.stop(user_id)
            self._usage.pop(user_id, None)
            self._vnc_endpoints.pop(user_id, None)

    async def hand_over(self, user_id: str) -> None:
        """Another node took over the user's session. If it re-adopted this desktop (same
        host), stop managing it here and leave it running (never stopped or reaped by this
        node); if it started another one (another host), this one serves nobody: stop it."""
        async with self._lock(user_id):
            if self._usage.get(user_id, Usage()).attached or self.xvnc.owns(user_id):
                return  # attached here again, or still this node's
            self._usage.pop(user_id, None)
            if self.xvnc.adopted_elsewhere(user_id):
                await self.xvnc.release(user_id)
                log.info("desktop of user %s left running for the node that took it over",
                         user_id)
            else:
                await self.xvnc.stop(user_id)  # the registry row (another desktop) stays
                log.info("desktop of user %s stopped: its session moved to another host",
                         user_id)

    async def adopt_recorded(self) -> list[str]:
        """Re-adopt desktops left running by a gateway that stopped or died (see
        `XvncProvider.adopt_recorded`); their idle clock starts now."""
        adopted = await self.xvnc.adopt_recorded()
        for user in adopted:
            self._usage.setdefault(user, Usage(0, self._clock()))
        return adopted

    async def reap_idle(self, now: float | None = None) -> list[str]:
        """Stop every desktop unattached for ``stop_unattached_after``; return whose."""
        now = self._clock() if now is None else now
        running = [d.spec.user_id for d in self.xvnc.desktops()]
        # Only a desktop nobody is attached to needs its user's limit (a policy lookup that
        # reads the store): during the school day that is few of them.
        unattached = idle_desktops(self._usage, running, now, 0.0)
        stopped = []
        for user in [u for u in unattached
                     if idle_desktops(self._usage, [u], now, self._stop_after(u))]:
            async with self._lock(user):
                # Re-decide under the lock: a session may have attached while we waited.
                if idle_desktops(self._usage, [user], now, self._stop_after(user)):
                    if not self.xvnc.owns(user):  # another node re-adopted it: not ours to end
                        await self.xvnc.release(user)
                        self._usage.pop(user, None)
                        continue
                    await self.xvnc.stop(user)
                    self._usage.pop(user, None)
                    stopped.append(user)
                    log.info("stopped idle desktop of user %s", user)
        return stopped

    def start_reaper(self, interval: float = 30.0) -> None:
        """Run `reap_idle` every ``interval`` seconds until `shutdown`."""
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever(interval))

    async def shutdown(self, *, keep_desktops: bool = False) -> None:
        """Stop the reaper and every desktop with all of its processes — or, with
        ``keep_desktops`` and a registry, leave the desktops running for the next gateway."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await self.xvnc.shutdown(keep_desktops=keep_desktops)
        await self.vnc.shutdown()
        self._usage.clear()
        self._vnc_endpoints.clear()

    def status(self) -> list[WorkspaceStatus]:
        rows = [
            WorkspaceStatus(
                user=d.spec.user_id,
                provider="xvnc",
                display=f":{d.spec.display}",
                port=0,
                started=d.started_at,
                attached=self._usage.get(d.spec.user_id, Usage()).attached,
            )
            for d in self.xvnc.desktops()
        ]
        rows += [
            WorkspaceStatus(user, "vnc", None, ep.port, None, self._usage[user].attached)
            for user, ep in self._vnc_endpoints.items()
            if user in self._usage
        ]
        return sorted(rows, key=lambda row: row.user)

    def _stop_after(self, user_id: str) -> float:
        """The user's workspace.stop_unattached_after as her policy says now (a reload applies
        to running desktops), else the manager's."""
        if self.xvnc.settings_for is None:
            return self.stop_unattached_after
        try:
            return self.xvnc.settings_for(user_id).stop_unattached_after
        except Exception:  # e.g. a user deleted since: the board's default
            return self.stop_unattached_after

    def _lock(self, user_id: str) -> asyncio.Lock:
        return self._locks.setdefault(user_id, asyncio.Lock())

    async def _reap_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap_idle(self._clock())
            except Exception:
                log.exception("idle desktop reaper failed; will retry")
