"""What `/api/v1/health` reports: whether the gateway can write what it must write.

The gateway fails closed: when the audit log, the recordings or the state database cannot be
written (a full disk), new sessions and admin actions are refused with one sentence, while
health keeps answering and says which part is failing. Each part recovers by itself — the next
successful write clears it, and a watchdog retries every few seconds so health turns green when
space returns even if nobody tries to log in. Attacker-controlled here: nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.audit.kinds import WritesResumed, to_event

log = logging.getLogger(__name__)

PROBE_EVERY = 5.0  # seconds between retries while a part is failing
PROBE_BYTES = 64 * 1024  # a recording start needs about this much to succeed


@dataclass(slots=True)
class Health:
    """Parts that failed to write, each with its sentence (cleared by the next success)."""

    failing: dict[str, str] = field(default_factory=dict)

    def failed(self, part: str, sentence: str) -> None:
        if part not in self.failing:
            log.error("%s is failing: %s", part, sentence)
        self.failing[part] = sentence

    def ok(self, part: str) -> None:
        if self.failing.pop(part, None) is not None:
            log.warning("%s is writable again", part)


def health_of(extras: dict[str, Any]) -> Health:
    health = extras.get("health")
    if health is None:
        health = extras["health"] = Health()
    return health  # type: ignore[no-any-return]


def report(context: Any) -> dict[str, object]:
    """The health document: "ok", or "degraded" with one sentence per failing part."""
    problems = dict(health_of(context.extras).failing)
    for part, source in (("audit", context.audit), ("state", context.store)):
        error = getattr(source, "write_error", None)
        if error:
            problems[part] = error
    try:
        st = os.statvfs(context.data.root)
        free: int | None = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    return {"status": "degraded" if problems else "ok", "service": "staffroom-gateway",
            "node": getattr(context, "node", None), "problems": problems,
            "disk_free_bytes": free}


def probe_directory(directory: Path) -> None:
    """Write, fsync and remove PROBE_BYTES in `directory`; raises OSError when it cannot."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / ".staffroom-probe"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(b"\0" * PROBE_BYTES)
            while view:  # a nearly full disk writes short before it refuses
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def retry_failing(context: Any, recordings: Path) -> None:
    """One watchdog round (blocking: run it in a thread): retry each failing part once."""
    health = health_of(context.extras)
    if getattr(context.audit, "write_error", None):
        with contextlib.suppress(Exception):  # still failing: write_error stays set
            context.audit.append(to_event(WritesResumed(context.audit.write_error)))
    if getattr(context.store, "write_error", None):
        with contextlib.suppress(Exception):
            context.store.probe_write()
    context.audit.keep_reserve()
    if "recording" in health.failing:
        try:
            probe_directory(recordings)
        except OSError:
            return
        health.ok("recording")


async def watchdog(context: Any, recordings: Path) -> None:
    while True:
        await asyncio.sleep(PROBE_EVERY)
        if report(context)["problems"]:
            await asyncio.to_thread(retry_failing, context, recordings)
