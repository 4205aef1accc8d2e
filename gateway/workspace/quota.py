"""Per-user persistent homes with a hard size limit: an ext4 image on a loop device.

Attacker-controlled here: what the teacher writes into their HOME — the filesystem's size is the
quota (ENOSPC past it); the image's path comes from the checked user id, never from HOME's content.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

MIN_QUOTA = 8 * 1024 * 1024  # ext4 needs a few MiB for its own metadata and journal
TOOL_TIMEOUT = 60.0  # mkfs/resize2fs on a large sparse image stays well under this
MOUNT_OPTIONS = "loop,nosuid,nodev,noatime"


class QuotaUnavailable(OSError):
    """No loop device, no mount rights, or an e2fsprogs tool failed: use the fallback."""


def _run(argv: list[str]) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=TOOL_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise QuotaUnavailable(0, f"{argv[0]}: {exc}") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip()[-300:]
        raise QuotaUnavailable(0, f"{argv[0]} exited {done.returncode}: {why}")


def mounted(path: Path) -> bool:
    """True if something is mounted exactly on ``path`` (bind mounts too, which
    os.path.ismount misses when they come from the same filesystem)."""
    target = os.path.realpath(path)
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return os.path.ismount(path)
    for line in lines:
        point = line.split()[4]
        if "\\" in point:  # mountinfo escapes space, tab, newline and backslash as \ooo
            point = point.encode().decode("unicode_escape")
        if point == target:
            return True
    return False


def prepare_image(image: Path, quota: int, owner: tuple[int, int]) -> None:
    """Create the sparse image (first login) or grow it to a raised quota; never shrink it."""
    image.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not image.exists():
        tmp = image.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        with open(tmp, "xb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.truncate(quota)  # sparse: the server's disk fills only as the teacher writes
        uid, gid = owner
        _run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", "staffroom-home",
              "-E", f"root_owner={uid}:{gid},lazy_itable_init=1,lazy_journal_init=1",
              str(tmp)])  # fmt: skip
        tmp.rename(image)  # only a complete filesystem ever carries the final name
        return
    size = image.stat().st_size
    if quota > size:
        _run(["e2fsck", "-f", "-p", str(image)])  # resize2fs insists on a fresh check
        os.truncate(image, quota)
        _run(["resize2fs", str(image)])
        log.info("home image %s grown to %d bytes", image.name, quota)
    elif quota < size:
        # Shrinking could destroy files the teacher has; the admin does it by hand (WORKSPACE.md).
        log.warning("home image %s is larger than the quota (%d > %d); kept", image.name,
                    size, quota)  # fmt: skip


def mount_home(image: Path, home: Path, quota: int, owner: tuple[int, int]) -> None:
    """Blocking: HOME becomes the mounted image. Raises QuotaUnavailable if that cannot be."""
    if quota < MIN_QUOTA:
        raise QuotaUnavailable(0, f"a home quota below {MIN_QUOTA} bytes cannot hold ext4")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if mounted(home):
        # Left by a gateway that crashed: mounting the image a second time would corrupt it.
        log.warning("home %s is still mounted from before; reusing that mount", home)
        return
    prepare_image(image, quota, owner)
    _run(["mount", "-t", "ext4", "-o", MOUNT_OPTIONS, str(image), str(home)])
    try:
        os.chown(home, *owner)
        home.chmod(0o700)
    except OSError as exc:
        unmount_home(home)
        raise QuotaUnavailable(exc.errno, f"cannot hand {home} to the desktop account") from None


def bind_home(home: Path, target: Path) -> None:
    """Blocking: show HOME at ``target`` too (nosuid, nodev), for the desktop's sandbox."""
    target.mkdir(mode=0o700)
    _run(["mount", "--bind", str(home), str(target)])
    try:
        _run(["mount", "-o", "remount,bind,nosuid,nodev", str(target)])
    except QuotaUnavailable:
        unmount_home(target)
        raise


def unmount_home(home: Path) -> None:
    """Blocking: unmount (lazily if something still holds it); the loop device auto-detaches."""
    if not mounted(home):
        return
    try:
        _run(["umount", str(home)])
    except QuotaUnavailable as exc:
        log.warning("home %s busy (%s); detaching lazily", home, exc)
        _run(["umount", "-l", str(home)])


def loop_devices_work() -> bool:
    """Cheap pre-check for the log: a chroot without /dev/loop-control cannot mount images."""
    return Path("/dev/loop-control").exists() and os.geteuid() == 0
