"""Fallback home quota where loop devices cannot be used: measure, then freeze the home.

Attacker-controlled here: the files in HOME (names, links, sizes) — the walk never follows
symlinks, stops counting past MAX_ENTRIES, and single files are capped by RLIMIT_FSIZE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL = 2.0  # seconds between usage checks: how far past the quota a fast writer gets
MAX_ENTRIES = 1_000_000  # a home with more entries than this counts as over quota
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def usage(home: Path) -> int:
    """Bytes allocated under ``home`` (st_blocks, so sparse files count as what they use)."""
    total, entries = 0, 0
    stack = [str(home)]
    while stack:
        try:
            scan = os.scandir(stack.pop())
        except OSError:
            continue
        with scan:
            for entry in scan:
                entries += 1
                if entries > MAX_ENTRIES:
                    return 1 << 62
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
    return total


def _walk(home: Path) -> list[str]:
    paths = [str(home)]
    for root, dirs, files in os.walk(home, followlinks=False):
        paths.extend(os.path.join(root, name) for name in (*dirs, *files))
    return paths


def freeze(home: Path) -> None:
    """Blocking: root owns everything and nothing is writable, so the owner cannot undo it."""
    for path in _walk(home):
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                os.lchown(path, 0, -1)
                continue
            os.lchown(path, 0, -1)
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~_WRITE_BITS, follow_symlinks=False)


def thaw(home: Path, owner: tuple[int, int]) -> None:
    """Blocking: give a frozen home back (at the next start) so the teacher can delete files."""
    for path in _walk(home):
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if st.st_uid != 0:
                continue
            os.lchown(path, *owner)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IWUSR, follow_symlinks=False)


async def watch(home: Path, quota: int, label: str, interval: float = INTERVAL) -> None:
    """Until cancelled: freeze ``home`` as soon as it holds more than ``quota`` bytes.

    A home already over quota at the start (frozen last time, thawed for this session) may only
    shrink: the limit is the lowest usage seen, until that falls under the quota.
    """
    lowest: int | None = None
    while True:
        used = await asyncio.to_thread(usage, home)
        lowest = used if lowest is None else min(lowest, used)
        if used > max(quota, lowest):
            await asyncio.to_thread(freeze, home)
            log.warning("%s: home over its quota (%d > %d bytes): made read-only", label,
                        used, quota)  # fmt: skip
            return
        await asyncio.sleep(interval)
