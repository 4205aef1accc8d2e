"""Applies a desktop's limits around its processes: quota'd HOME, network namespace, relays.

Attacker-controlled here: nothing is parsed; this module decides where the teacher's processes
run (namespace, uid, RLIMIT_FSIZE) — limits are those of `quota`, `quota_watch` and `egress`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gateway.workspace import egress, quota, quota_watch
from gateway.workspace.netns import NamespaceError, NetNamespace

log = logging.getLogger(__name__)

QuotaBackend = Literal["auto", "image", "watch"]
HomeMode = Literal["image", "watch", "none"]


@dataclass(frozen=True, slots=True)
class Limits:
    """A desktop's system-enforced limits (from policy); None/() mean "off" / "nothing"."""

    egress: tuple[egress.EgressRule, ...] | None = ()  # None: no namespace (not isolated)
    home_quota: int | None = None
    quota_backend: QuotaBackend = "auto"
    home_image: Path | None = None  # DATA_DIR/home-images/<user>.ext4

    @property
    def isolated(self) -> bool:
        return self.egress is not None


@dataclass(slots=True)
class Confinement:
    """What a running desktop holds open because of its limits; `release` undoes it."""

    label: str
    home: Path
    home_mode: HomeMode = "none"
    netns: NetNamespace | None = None
    relay: egress.EgressRelay | None = None
    watcher: asyncio.Task[None] | None = None
    listeners: list[egress.Listener] = field(default_factory=list)

    async def start(self, limits: Limits, owner: tuple[int, int]) -> None:
        """Namespace and relays first (no process runs yet), then the usage watcher."""
        if limits.isolated:
            listeners = await egress.resolve(limits.egress or ())
            self.listeners = listeners
            try:
                self.netns = await asyncio.to_thread(
                    NetNamespace.create, [item.address for item in listeners]
                )
            except NamespaceError as exc:
                log.error("%s: no network namespace (%s)", self.label, exc)
                raise
            self.relay = egress.EgressRelay(self.label)
            await self.relay.start(self.netns, listeners)
        if self.home_mode == "watch" and limits.home_quota is not None:
            self.watcher = asyncio.create_task(
                quota_watch.watch(self.home, limits.home_quota, self.label)
            )

    async def release(self) -> None:
        """After every process is gone: stop relays and watcher, drop the namespace, unmount."""
        if self.watcher is not None:
            self.watcher.cancel()
            await asyncio.gather(self.watcher, return_exceptions=True)
        if self.relay is not None:
            await self.relay.close()
        if self.netns is not None:
            self.netns.close()
        if self.home_mode == "image":
            try:
                await asyncio.to_thread(quota.unmount_home, self.home)
            except quota.QuotaUnavailable as exc:
                log.error("%s: cannot unmount its home: %s", self.label, exc)


def prepare_home(limits: Limits, home: Path, owner: tuple[int, int], label: str) -> HomeMode:
    """Blocking: mount the quota'd image on HOME, or set up the fallback. Raises OSError."""
    if limits.home_quota is None:
        return "none"
    if limits.quota_backend in ("auto", "image"):
        assert limits.home_image is not None
        try:
            quota.mount_home(limits.home_image, home, limits.home_quota, owner)
            return "image"
        except quota.QuotaUnavailable as exc:
            if limits.quota_backend == "image":
                raise
            log.warning("%s: no home image (%s); falling back to usage checks", label, exc)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    quota_watch.thaw(home, owner)  # frozen last time: the teacher may now delete files
    return "watch"
