"""The audit log's reserve: disk kept aside so that deleting a recording can still be recorded
when the disk is full (retention frees space only if each deletion is audited first).

Attacker-controlled here: nothing (the file's name and size are fixed; its contents are zeros).
Limits: one file of RESERVE_BYTES in the log's directory, made again once there is room.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_FILE = "audit.reserve"
RESERVE_BYTES = 1024 * 1024  # room for ~1,000 deletion records when the disk is full
FULL = (errno.ENOSPC, errno.EDQUOT)


def write_sentence(exc: OSError) -> str:
    """Why an append failed, in one sentence for the operator."""
    if exc.errno in FULL:
        return "The audit log cannot be written because the disk is full."
    return f"The audit log cannot be written ({os.strerror(exc.errno or errno.EIO)})."


def keep(directory: Path) -> bool:
    """Make the reserve file (RESERVE_BYTES of disk kept for recording deletions) if it is
    missing; False when there is no room for it yet."""
    path = directory / RESERVE_FILE
    if path.exists():
        return True
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return True
    except OSError:
        return False
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
        os.fsync(fd)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        return False
    os.close(fd)
    return True


def release(directory: Path) -> bool:
    """Give the reserve up (the disk is full and a deletion must be recorded); False when there
    is none to give."""
    path = directory / RESERVE_FILE
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    log.warning("audit: the disk is full; gave up the reserve to record a deletion")
    return True
