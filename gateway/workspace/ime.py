"""Japanese school work in a desktop: locale, input-method environment and the fcitx5 profile.

Attacker-controlled here: nothing; files go into the user's own HOME and are only written when
missing, so a teacher's own fcitx5 settings survive. No limits needed.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

JAPANESE_LOCALE = "ja_JP.UTF-8"
FALLBACK_LOCALE = "C.UTF-8"
TRIGGER_KEY = "Zenkaku_Hankaku"  # the 半角/全角 key on Japanese keyboards
XIM_SERVER = "@server=fcitx"  # in XIM_SERVERS once fcitx5 is ready (lockdown.SESSION_STARTER)

IME_ENV = {
    "GTK_IM_MODULE": "fcitx",
    "QT_IM_MODULE": "fcitx",
    "XMODIFIERS": "@im=fcitx",
    "SDL_IM_MODULE": "fcitx",
}

# keyboard-jp first (inactive state), mozc second: the trigger key toggles between them.
FCITX5_PROFILE = """\
[Groups/0]
Name=Default
Default Layout=jp
DefaultIM=mozc

[Groups/0/Items/0]
Name=keyboard-jp
Layout=

[Groups/0/Items/1]
Name=mozc
Layout=

[GroupOrder]
0=Default
"""

FCITX5_CONFIG = f"""\
[Hotkey]
EnumerateWithTriggerKeys=True

[Hotkey/TriggerKeys]
0={TRIGGER_KEY}

[Behavior]
ShareInputState=All
"""


async def pick_locale() -> str:
    """ja_JP.UTF-8 when the system has it compiled, else C.UTF-8 (fonts still cover Japanese)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "locale",
            "-a",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 5.0)
    except (OSError, TimeoutError):
        return FALLBACK_LOCALE
    names = {line.strip().lower().replace("-", "") for line in out.decode().splitlines()}
    return JAPANESE_LOCALE if "ja_jp.utf8" in names else FALLBACK_LOCALE


def fcitx5_args(*, clipboard: bool) -> list[str]:
    """fcitx5 in the foreground: `-d` would setsid() out of the session's process group."""
    disabled = ["wayland", "waylandim"]  # no Wayland here; they only log errors
    if not clipboard:
        disabled.append("clipboard")  # its history panel is one more clipboard surface
    return ["fcitx5", "-D", "--disable", ",".join(disabled)]


def prepare_home(home: Path, owner: tuple[int, int] | None) -> None:
    """Create the fcitx5 profile/config and ~/.config/mozc (mozc_server exits without it).

    Everything is opened relative to directory fds with O_NOFOLLOW: the desktop's own user can
    write in HOME, and a symlink planted there must not steer the gateway's writes elsewhere.
    """
    home_fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        config_fd = _subdir(home_fd, ".config", owner)
        try:
            os.close(_subdir(config_fd, "mozc", owner))
            fcitx_fd = _subdir(config_fd, "fcitx5", owner)
            try:
                _create_file(fcitx_fd, "profile", FCITX5_PROFILE, owner)
                _create_file(fcitx_fd, "config", FCITX5_CONFIG, owner)
            finally:
                os.close(fcitx_fd)
        finally:
            os.close(config_fd)
    finally:
        os.close(home_fd)


def _subdir(parent_fd: int, name: str, owner: tuple[int, int] | None) -> int:
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        pass
    else:
        if owner is not None:
            os.chown(name, *owner, dir_fd=parent_fd, follow_symlinks=False)
    return os.open(
        name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd
    )


def _create_file(dir_fd: int, name: str, text: str, owner: tuple[int, int] | None) -> None:
    """Write ``name`` only if nothing (not even a dangling symlink) is there yet."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        return
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
