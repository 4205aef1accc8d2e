"""Provider ``xvnc``: the gateway starts one TigerVNC desktop per teacher and reattaches to it.

Attacker-controlled here: the user id (checked by `check_user_id` before it names a HOME) and
how often a user attaches — one desktop per user at most; a start is bounded by start_timeout.
Each teacher's desktop runs under their own uid from desktop_uids (never root or nobody).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import re
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from gateway.workspace import adoption, egress, ime, lockdown, sandbox
from gateway.workspace.adoption import DesktopRegistry
from gateway.workspace.base import (
    Assignment,
    Endpoint,
    InvalidAssignment,
    WorkspaceStartFailed,
    check_user_id,
)
from gateway.workspace.confinement import Limits, QuotaBackend
from gateway.workspace.desktop import Account, DesktopSpec, XvncDesktop, start_desktop
from gateway.workspace.settings import DEFAULT_HOME_QUOTA, DesktopSettings, SettingsLookup
from gateway.workspace.uids import DesktopUids, UidRange, UidStore, check_no_collision

log = logging.getLogger(__name__)

_GEOMETRY = re.compile(r"[1-9]\d{2,4}x[1-9]\d{2,4}")
_X_SOCKETS = Path("/tmp/.X11-unix")
START_ATTEMPTS = 3  # a display or port taken between our check and Xvnc's bind: try another


def own_account() -> Account:
    """A gateway not running as root can only run desktops as itself (no switch, no limits)."""
    me = pwd.getpwuid(os.geteuid())
    return Account(me.pw_name, me.pw_uid, me.pw_gid, switch=False)


def display_free(number: int) -> bool:
    return not (Path(f"/tmp/.X{number}-lock").exists() or (_X_SOCKETS / f"X{number}").exists())


class XvncProvider:
    """Starts, finds and stops per-user Xvnc desktops. Attach counting lives in the manager.

    The keyword arguments from ``session_command`` on are the settings of every desktop, unless
    ``settings_for`` gives a user's own (her policy: gateway.workspace.settings)."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        session_command: Sequence[str] | str,
        geometry: str = "1280x800",
        clipboard: bool = False,
        desktop_uids: UidRange | str | None = None,
        uid_store: UidStore | None = None,
        home_url: str = "",
        sandbox_mode: Literal["auto", "user", "root"] = "auto",
        input_method: bool = True,
        start_timeout: float = 10.0,
        display_base: int = 40,
        allowed_hosts: Sequence[str] = (),
        isolate_network: bool = True,
        home_quota_bytes: int | None = DEFAULT_HOME_QUOTA,
        quota_backend: QuotaBackend = "auto",
        printing: bool = False,
        registry: DesktopRegistry | None = None,
        settings_for: SettingsLookup | None = None,
    ) -> None:
        if not _GEOMETRY.fullmatch(geometry):
            raise InvalidAssignment(f"The desktop size {geometry!r} is not WIDTHxHEIGHT.")
        self.defaults = DesktopSettings.of(
            session_command, home_url=home_url, allowed_hosts=allowed_hosts,
            home_quota_bytes=home_quota_bytes, printing=printing, clipboard=clipboard)
        self.settings_for = settings_for
        self.homes = Path(data_dir) / "homes"
        self.geometry = geometry
        self.root = os.geteuid() == 0
        self.account = own_account()
        self._uid_range = desktop_uids
        self._uid_store = uid_store
        self._uids: DesktopUids | None = None
        self._want_mode = sandbox_mode
        self._mode: sandbox.SandboxMode | None = None  # set once the sandbox probe passed
        self.input_method = input_method
        self.start_timeout = start_timeout
        self.display_base = display_base
        self._data_dir, self._isolate, self._quota_backend = \
            Path(data_dir), isolate_network, quota_backend
        self.limits = self._limits_for(self.defaults)  # checked now: a bad default fails early
        # Per (printing, clipboard): the wrappers differ, every desktop of a kind shares them.
        self._lockdowns: dict[tuple[bool, bool], lockdown.SessionLockdown] = {}
        self._desktops: dict[str, XvncDesktop] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._reserved: set[int] = set()
        self._stopping: set[asyncio.Task[None]] = set()
        self._locale: str | None = None
        self.registry = registry  # None: desktops are not recorded (they end with the gateway)

    def get(self, user_id: str) -> XvncDesktop | None:
        desktop = self._desktops.get(user_id)
        return desktop if desktop is not None and desktop.alive else None

    def desktops(self) -> list[XvncDesktop]:
        return [d for d in self._desktops.values() if d.alive]

    async def attach(self, user_id: str, assignment: Assignment | None = None) -> Endpoint:
        """The user's running desktop, or a new one: same user, same endpoint."""
        check_user_id(user_id)
        async with self._locks.setdefault(user_id, asyncio.Lock()):
            desktop = self._desktops.get(user_id)
            if desktop is not None and desktop.alive:
                return desktop.endpoint
            if desktop is not None:  # Xvnc died or the teacher logged out: clean up, start anew
                await self._forget(user_id)
            desktop = await self._adopt_one(user_id)  # left running by a gateway that died
            if desktop is None:
                desktop = await self._start(user_id)
                self._record(desktop)
            self._desktops[user_id] = desktop
            return desktop.endpoint

    async def stop(self, user_id: str) -> None:
        async with self._locks.setdefault(user_id, asyncio.Lock()):
            await self._forget(user_id)

    async def shutdown(self, *, keep_desktops: bool = False) -> None:
        """Stop every desktop, including stops already under way (e.g. a cancelled reaper's).

        ``keep_desktops``: leave recorded desktops running for the next gateway to re-adopt
        (a graceful gateway stop); only what this process holds for them is let go.
        """
        if keep_desktops and self.registry is not None:
            for user in list(self._desktops):
                await self.release(user)
        await asyncio.gather(*(self.stop(user) for user in list(self._desktops)))
        while self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        if not (keep_desktops and self.registry is not None):
            for kind in list(self._lockdowns):
                await asyncio.to_thread(shutil.rmtree, self._lockdowns.pop(kind).base, True)

    def settings(self, user_id: str) -> DesktopSettings:
        """The settings a new desktop of ``user_id`` gets (WorkspaceError from the lookup)."""
        return self.defaults if self.settings_for is None else self.settings_for(user_id)

    def owns(self, user_id: str) -> bool:
        """False when another node has re-adopted this user's desktop since we started it."""
        if self.registry is None:
            return True
        record = self.registry.store.get_desktop(user_id)
        desktop = self._desktops.get(user_id)
        return record is None or desktop is None or record.node == self.registry.node \
            or record.runtime_dir != str(desktop.runtime_dir)

    def adopted_elsewhere(self, user_id: str) -> bool:
        """True when another node has re-adopted this very desktop (the registry row names it,
        under that node); False when the row names a different desktop or none."""
        if self.registry is None:
            return False
        record = self.registry.store.get_desktop(user_id)
        desktop = self._desktops.get(user_id)
        return record is not None and desktop is not None \
            and record.node != self.registry.node \
            and record.runtime_dir == str(desktop.runtime_dir)

    async def release(self, user_id: str) -> None:
        """Stop managing the user's desktop but leave it running (its registry row stays)."""
        async with self._locks.setdefault(user_id, asyncio.Lock()):
            desktop = self._desktops.pop(user_id, None)
            if desktop is None:
                return
            self._reserved.discard(desktop.spec.display)
            if desktop.confinement is not None:  # relays and watcher live in this process
                confinement = desktop.confinement
                confinement.home_mode = "none"  # the mount stays: the desktop still uses it
                await confinement.release()

    async def adopt_recorded(self) -> list[str]:
        """At start: re-adopt this node's recorded desktops on this host that still run; end
        and forget the dead ones of any node (audited first). Returns the adopted users."""
        if self.registry is None:
            return []
        adopted = []
        for record in self.registry.store.list_desktops(self.registry.host):
            async with self._locks.setdefault(record.user_id, asyncio.Lock()):
                if record.user_id in self._desktops:
                    continue
                why = await adoption.why_not_adoptable(record)
                if why:
                    await self._bury(record, why)
                elif record.node == self.registry.node:
                    desktop = await self._adopt_record(record)
                    if desktop is not None:
                        adopted.append(record.user_id)
        return adopted

    async def _adopt_one(self, user_id: str) -> XvncDesktop | None:
        """The user's desktop recorded on this host by any node, if it still runs."""
        if self.registry is None:
            return None
        record = self.registry.store.get_desktop(user_id)
        if record is None or record.host != self.registry.host:
            return None
        why = await adoption.why_not_adoptable(record)
        if why:
            await self._bury(record, why)
            return None
        return await self._adopt_record(record)

    async def _adopt_record(self, record: adoption.DesktopRecord) -> XvncDesktop | None:
        assert self.registry is not None
        if self._locale is None:
            self._locale = await ime.pick_locale()
        try:
            settings = self.settings(record.user_id)
        except Exception:  # e.g. a user deleted since: the safe defaults
            log.warning("desktop :%d of user %s is re-adopted with the default settings: the "
                        "user's own could not be read", record.display, record.user_id)
            settings = self.defaults
        limits = self._home_limits(self._limits_for(settings), record.user_id)
        await self.registry.on_adopted(record)  # audited before this node takes it over
        desktop = await adoption.adopt(record, user_id=record.user_id,
                                       session_command=settings.session_command,
                                       geometry=self.geometry, locale=self._locale,
                                       limits=limits)
        if desktop is None:
            await self._bury(record, "it could not be re-adopted")
            return None
        if record.node != self.registry.node:
            self.registry.store.claim_desktop(record.user_id, self.registry.node)
        self._reserved.add(record.display)
        self._desktops[record.user_id] = desktop
        return desktop

    async def _bury(self, record: adoption.DesktopRecord, why: str) -> None:
        """A recorded desktop that no longer runs whole: audited, ended, forgotten."""
        assert self.registry is not None
        log.warning("desktop :%d of user %s is forgotten: %s", record.display, record.user_id,
                    why)
        await self.registry.on_forgotten(record, why)
        await adoption.end_recorded(record)
        self.registry.store.drop_desktop(record.user_id, record.runtime_dir)

    def _record(self, desktop: XvncDesktop) -> None:
        if self.registry is None:
            return
        registry = self.registry
        try:
            registry.store.put_desktop(adoption.record_of(desktop, registry.node, registry.host))
        except Exception:  # the desktop runs; only its survival of a gateway death is lost
            log.exception("desktop :%d of user %s could not be recorded", desktop.spec.display,
                          desktop.spec.user_id)

    async def _forget(self, user_id: str) -> None:
        desktop = self._desktops.pop(user_id, None)
        if desktop is None:
            return
        # A stop runs to the end even if its caller is cancelled: half a stop leaves orphans.
        task = asyncio.create_task(desktop.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)
        task.add_done_callback(lambda _: self._reserved.discard(desktop.spec.display))
        await asyncio.shield(task)
        if self.registry is not None:  # after the stop: a crash mid-stop leaves the row
            with contextlib.suppress(Exception):
                self.registry.store.drop_desktop(user_id, str(desktop.runtime_dir))

    async def _start(self, user_id: str) -> XvncDesktop:
        if self._locale is None:
            self._locale = await ime.pick_locale()
        settings = self.settings(user_id)
        limits = self._home_limits(self._limits_for(settings), user_id)
        account = await self._account(user_id)
        check_enforceable(account, limits)
        if self._mode is None:
            self._mode = await asyncio.to_thread(
                sandbox.check_available, account.uid, account.gid, account.switch,
                self._want_mode)
        kind = (settings.printing, settings.clipboard)
        locked = self._lockdowns.get(kind)
        if locked is None:
            # Not under DATA_DIR: that may be closed to the desktop account (0700).
            locked = self._lockdowns[kind] = await asyncio.to_thread(
                lockdown.install, None, printing=settings.printing, clipboard=settings.clipboard
            )
        for _attempt in range(START_ATTEMPTS):
            display = await asyncio.to_thread(self._pick_display)
            self._reserved.add(display)
            spec = DesktopSpec(
                user_id=user_id,
                display=display,
                home=self.homes / user_id,
                account=account,
                session_command=settings.session_command,
                geometry=self.geometry,
                locale=self._locale,
                clipboard=settings.clipboard,
                input_method=self.input_method,
                start_timeout=self.start_timeout,
                lockdown=locked,
                limits=limits,
                home_url=settings.home_url,
                sandbox_mode=self._mode,
            )
            try:
                return await start_desktop(spec)
            except WorkspaceStartFailed:
                self._reserved.discard(display)
                last_display = display
        log.error("user %s: no desktop after %d attempts (last :%d)", user_id,
                  START_ATTEMPTS, last_display)  # fmt: skip
        raise WorkspaceStartFailed()

    async def _account(self, user_id: str) -> Account:
        """The teacher's own account: a uid from desktop_uids (root), else the gateway's own."""
        if not self.root:
            return self.account
        if self._uids is None:
            ids = self._uid_range
            if not isinstance(ids, UidRange):
                ids = UidRange.parse(ids)
            if self._uid_store is None:
                raise InvalidAssignment("Desktop accounts need the gateway's state database.")
            await asyncio.to_thread(check_no_collision, ids)
            self._uids = DesktopUids(ids, self._uid_store)
        uid = await asyncio.to_thread(self._uids.uid_for, user_id)
        return Account(user_id, uid, uid, switch=True)

    def _limits_for(self, settings: DesktopSettings) -> Limits:
        return _limits(self.account, self._data_dir, settings.allowed_hosts, self._isolate,
                       settings.home_quota_bytes, self._quota_backend)

    def _home_limits(self, limits: Limits, user_id: str) -> Limits:
        if limits.home_quota is None:
            return limits
        return replace(limits, home_image=self.homes.parent / "home-images" / f"{user_id}.ext4")

    def _pick_display(self) -> int:
        for number in range(self.display_base, self.display_base + 1000):
            if number not in self._reserved and display_free(number):
                return number
        raise WorkspaceStartFailed("This gateway has no free desktop slots: try again later.")


def _limits(
    account: Account,
    data_dir: Path,
    allowed_hosts: Sequence[str],
    isolate_network: bool,
    home_quota: int | None,
    quota_backend: QuotaBackend,
) -> Limits:
    """The limits as data; `check_enforceable` runs before the first desktop starts."""
    if quota_backend not in ("auto", "image", "watch"):
        raise InvalidAssignment(f"Unknown quota backend {quota_backend!r}.")
    rules: tuple[egress.EgressRule, ...] | None = None
    if isolate_network:
        rules, skipped = egress.parse_allowed_hosts(allowed_hosts)
        for entry in skipped:
            log.warning("allowed host %r has no port: it stays blocked (write host:port)", entry)
    elif allowed_hosts:
        log.warning("allowed_hosts are not enforced: desktops are not network-isolated")
    return Limits(egress=rules, home_quota=home_quota, quota_backend=quota_backend)


def check_enforceable(account: Account, limits: Limits) -> None:
    """Refuse to start desktops whose limits this gateway cannot enforce (fail closed).

    Checked at the first start, not at construction: a gateway serving only existing desktops
    (provider ``vnc``) needs none of this.
    """
    root = os.geteuid() == 0
    if limits.isolated and not root:
        raise InvalidAssignment(
            "Cutting desktops off the network needs the gateway to run as root "
            "(or isolate_network=False, which lets desktops reach any network)."
        )
    if account.uid == 0:
        raise InvalidAssignment("Desktops cannot run as root: root could leave their sandbox.")
    if limits.home_quota is not None and not root:
        raise InvalidAssignment("A home quota needs the gateway to run as root.")
