"""The school desktop's toolkit defaults, tuned for a screen seen through a transfer.

VDI desktops ship with animations off (Citrix Optimizer, VMware's OS Optimization Tool, RDP's
experience flags): an animated scroll is drawn as several frames, and every frame is a full
redraw of the view that the gateway reads, compares and re-encodes. GTK 3 animates each wheel
step and Page Down; with ``gtk-enable-animations`` off the view jumps to its new place in one
frame. Measured on the bench's GTK scrolling (docs/PERFORMANCE.md, issue 11 part AR): 7.5
frames a second instead of 10.1-10.8 for the same scroll, and a third less gateway CPU while
scrolling. A steady text cursor saves the frames of a blinking one, about two a second while a
teacher types or pauses (GTK stops blinking after ten idle seconds); the bench's desktop has
always had it steady.

These are defaults only: GTK reads the system directories in XDG_CONFIG_DIRS first and the
teacher's own ``~/.config/gtk-3.0/settings.ini`` last, so a teacher who wants animations back
sets them there. The file is written by the gateway, root-owned and read-only to the desktop.

Attacker-controlled: nothing (nothing is read from the desktop). No limits needed.
"""

from __future__ import annotations

from pathlib import Path

#: The directory under the lock-down base that goes first on the session's XDG_CONFIG_DIRS.
DIR_NAME = "xdg"
#: The system's own defaults directory, kept after ours (openbox, fcitx5 and others read it).
SYSTEM_DIRS = "/etc/xdg"

GTK3_SETTINGS = """\
[Settings]
gtk-enable-animations = false
gtk-cursor-blink = false
"""


#: Chromium's own animation: a wheel step scrolls the page over several frames. The school
#: session starts it with these flags (lockdown.SCHOOL_SESSION). Measured in docs/PERFORMANCE.md,
#: issue 11 part AR (the bench's ``browser-scroll``).
CHROMIUM_FLAGS = ("--disable-smooth-scrolling",)


def files() -> dict[str, str]:
    """Path under the config directory → text, for every file it holds."""
    return {"gtk-3.0/settings.ini": GTK3_SETTINGS}


def env(config_dir: Path) -> dict[str, str]:
    """The session's variables that make toolkits read ``config_dir`` before the system's."""
    return {"XDG_CONFIG_DIRS": f"{config_dir}:{SYSTEM_DIRS}"}
