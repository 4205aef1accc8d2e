"""What a desktop may not do, set up before its first process starts: print, automount, bridge.

Attacker-controlled here: nothing is read from the desktop; everything written here is root-owned
(0755/0644) so the teacher's processes can use it but not change it. No limits needed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.workspace import toolkit_defaults

PRINTING_OFF = (
    "Printing is turned off by your school's policy (Staffroom): nothing leaves the school desktop."
)
CLIPBOARD_OFF = (
    "Clipboard sharing is turned off by your school's policy (Staffroom): "
    "nothing leaves the school desktop."
)
PRINT_COMMANDS = ("lp", "lpr", "lpstat", "lpq", "lprm", "lpoptions", "cancel")
CLIPBOARD_BRIDGES = ("vncconfig", "autocutsel")
# Programs the session must never run; tests and the admin status check for them.
FORBIDDEN_PROGRAMS = (
    *CLIPBOARD_BRIDGES, "udisksd", "gvfsd", "gvfs-udisks2-volume-monitor", "gvfsd-fuse",
)  # fmt: skip

# A session bus with no service directories: nothing (gvfs, udisks helpers, portals) can be
# started behind our back by D-Bus activation; only what we start ourselves runs.
SESSION_BUS_CONFIG = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <!-- Required by dbus-daemon; the address given on its command line replaces it. -->
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


# Runs first in the session's room: the session bus, then fcitx5 (XIM clients only find it if it
# registered before they start; a slow fcitx5 costs Japanese input, not the desktop), then the
# session command. Everything stays in the room: when the session command ends, the room ends.
SESSION_STARTER = """\
#!/bin/sh
if ! command -v "$1" >/dev/null 2>&1; then
  echo "staffroom: the session command $1 is not installed" >&2; exit 127
fi
dbus-daemon --config-file="$STAFFROOM_BUS_CONFIG" --nofork --nopidfile \\
  --address="$DBUS_SESSION_BUS_ADDRESS" &
i=0
while [ ! -S "$XDG_RUNTIME_DIR/bus" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
if [ -n "$STAFFROOM_FCITX" ]; then
  $STAFFROOM_FCITX &
  i=0
  until xprop -root XIM_SERVERS 2>/dev/null | grep -q '@server=fcitx' || [ $i -ge 60 ]; do
    sleep 0.05; i=$((i+1))
  done
fi
exec "$@"
"""

# The default school session (policy workspace.session_command = "staffroom-session"): the
# browser on the school's system, the office suite's start centre, and the window manager,
# which holds the session (closing the browser does not end the desktop).
SCHOOL_SESSION = f"""\
#!/bin/sh
chromium $STAFFROOM_CHROMIUM_FLAGS --no-first-run --no-default-browser-check \\
  --password-store=basic {" ".join(toolkit_defaults.CHROMIUM_FLAGS)} \\
  --disable-background-networking --disable-component-update "$STAFFROOM_HOME_URL" &
if [ -z "$STAFFROOM_NO_OFFICE" ]; then soffice --nologo --nodefault & fi
exec openbox
"""


@dataclass(frozen=True, slots=True)
class SessionLockdown:
    """Where the lock-down files live (shared by all desktops) and what the policy allows."""

    base: Path  # root-owned 0755 directory holding the two below
    bin_dir: Path  # first on the session's PATH: refusing wrappers
    bus_config: Path
    starter: Path  # SESSION_STARTER
    config_dir: Path  # first on XDG_CONFIG_DIRS: the toolkits' defaults (toolkit_defaults)
    printing: bool = False
    clipboard: bool = False

    def env(self, runtime_dir: Path) -> dict[str, str]:
        """Variables that point apps at nothing (no CUPS, no volume monitors, no system bus), and
        the toolkits at the desktop's defaults (toolkit_defaults)."""
        env = {
            "PATH": f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "GIO_USE_VOLUME_MONITOR": "unix",  # no udisks2/gvfs volume monitor, no automount
            "GIO_USE_VFS": "local",  # GIO must not start gvfsd for smb://, sftp://, …
            "GVFS_DISABLE_FUSE": "1",
            "GTK_USE_PORTAL": "0",
            "NO_AT_BRIDGE": "1",  # the a11y bus is activated over D-Bus; it cannot be here
            # Not a socket: D-Bus clients of the system bus (udisks2, NetworkManager) fail fast.
            "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={runtime_dir / 'no-system-bus'}",
            **toolkit_defaults.env(self.config_dir),
        }
        if not self.printing:
            # A socket path that never exists: CUPS clients report no server, not a timeout.
            env["CUPS_SERVER"] = str(runtime_dir / "no-cups")
            env["PRINTER"] = "staffroom-printing-off"
        return env


def _wrapper(message: str) -> str:
    return f"#!/bin/sh\ncat >&2 <<'EOF'\n{message}\nEOF\nexit 1\n"


def wrappers(*, printing: bool, clipboard: bool) -> Mapping[str, str]:
    """File name → script text for the refusing wrappers this policy needs."""
    scripts: dict[str, str] = {}
    if not printing:
        scripts.update(dict.fromkeys(PRINT_COMMANDS, _wrapper(PRINTING_OFF)))
    if not clipboard:
        scripts.update(dict.fromkeys(CLIPBOARD_BRIDGES, _wrapper(CLIPBOARD_OFF)))
    return scripts


def install(base: Path | None, *, printing: bool, clipboard: bool) -> SessionLockdown:
    """Blocking: write the wrappers, the bus config and the toolkits' defaults (into a new /tmp
    dir if ``base`` is None).

    Owned by the gateway's uid and read-only to others: the desktop account can run them but
    not replace them. The caller removes ``base`` when it shuts down.
    """
    if base is None:
        base = Path(tempfile.mkdtemp(prefix="staffroom-lockdown-"))
    bin_dir = base / "bin"
    bin_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    os.chmod(bin_dir, 0o755)
    wanted = {**wrappers(printing=printing, clipboard=clipboard),
              "staffroom-session": SCHOOL_SESSION}
    for stale in bin_dir.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        _write_atomic(bin_dir / name, text, 0o755)
    bus_config = base / "session-bus.conf"
    _write_atomic(bus_config, SESSION_BUS_CONFIG, 0o644)
    starter = base / "session-start"
    _write_atomic(starter, SESSION_STARTER, 0o755)
    config_dir = write_toolkit_defaults(base / toolkit_defaults.DIR_NAME)
    return SessionLockdown(base, bin_dir, bus_config, starter, config_dir, printing=printing,
                           clipboard=clipboard)


def write_toolkit_defaults(config_dir: Path) -> Path:
    """Blocking: write toolkit_defaults' files under ``config_dir`` (0755 folders, 0644 files)
    and return it; the directory to put first on XDG_CONFIG_DIRS (the bench's desktop uses it
    too, so both start GTK from the same files)."""
    for name, text in toolkit_defaults.files().items():
        path = config_dir / name
        for folder in reversed([p for p in path.parents if p.is_relative_to(config_dir)]):
            folder.mkdir(mode=0o755, exist_ok=True)
            os.chmod(folder, 0o755)  # mkdir's mode passes through the umask
        _write_atomic(path, text, 0o644)
    return config_dir


def _write_atomic(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, text.encode())
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)
