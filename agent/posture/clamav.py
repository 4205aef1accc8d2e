"""ClamAV on Linux: definitions age from the daily database header, daemons from /proc.

Untrusted input here: local files (freshclam.conf, the 512-byte .cvd/.cld header, /proc) that
malware on the home PC could alter; reads are bounded (conf 64 KiB, header 512 bytes, /proc 4 KiB
per file) and every header field is checked. The gateway re-validates the whole report anyway.

A .cvd/.cld file opens with a 512-byte ASCII header padded with spaces:
    ClamAV-VDB:<build time>:<version>:<sigs>:<flevel>:<md5>:<dsig>:<builder>:<stime>
where the build time reads "25 Nov 2026 09-15 +0000" (a colon-free time, as sigtool prints it).
freshclam keeps daily.cld (incrementally updated) or daily.cvd (whole download); either may be
stale leftovers, so the newer one counts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gateway.wire.posture import AntivirusState, clip

DEFAULT_CONFIG = Path("/etc/clamav/freshclam.conf")
DEFAULT_DATABASE_DIR = Path("/var/lib/clamav")
HEADER_SIZE = 512
MAX_CONFIG_BYTES = 64 * 1024
DAEMONS = ("freshclam", "clamd", "clamonacc")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BUILD_TIME = re.compile(r"(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2})-(\d{2}) ([+-])(\d{2})(\d{2})")
_VERSION = re.compile(r"ClamAV (\d+(?:\.\d+){1,3}[\w.-]{0,20})")


class ClamavFormatError(ValueError):
    """A ClamAV database header or config line is not in the expected format."""


@dataclass(frozen=True, slots=True)
class CvdHeader:
    build_time: datetime
    version: int
    signatures: int
    functionality_level: int
    md5: str
    builder: str
    stime: int | None  # build time as seconds since the epoch (absent in very old files)


def parse_freshclam_conf(text: str) -> dict[str, str]:
    """`Option value` lines; '#' comments and blank lines skipped; a repeated option: last wins."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        options[name] = value.strip().strip('"')
    return options


def database_directory(config: Path | None = None) -> Path:
    """DatabaseDirectory from freshclam.conf, else ClamAV's compiled-in default."""
    path = config or DEFAULT_CONFIG
    try:
        with path.open("rb") as f:
            text = f.read(MAX_CONFIG_BYTES).decode("utf-8", "replace")
    except OSError:
        return DEFAULT_DATABASE_DIR
    value = parse_freshclam_conf(text).get("DatabaseDirectory")
    return Path(value) if value else DEFAULT_DATABASE_DIR


def parse_build_time(text: str) -> datetime:
    m = _BUILD_TIME.fullmatch(text.strip())
    if m is None or m.group(2) not in _MONTHS:
        raise ClamavFormatError(f"unexpected build time {text[:40]!r}")
    day, month, year, hour, minute, sign, oh, om = m.groups()
    offset = timedelta(hours=int(oh), minutes=int(om)) * (1 if sign == "+" else -1)
    try:
        return datetime(int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute),
                        tzinfo=timezone(offset))
    except ValueError as e:
        raise ClamavFormatError(f"impossible build time {text[:40]!r}") from e


def parse_cvd_header(data: bytes) -> CvdHeader:
    """Parse the first 512 bytes of a .cvd/.cld file."""
    if len(data) < HEADER_SIZE:
        raise ClamavFormatError("database file shorter than its 512-byte header")
    try:
        text = data[:HEADER_SIZE].decode("ascii").rstrip(" \0")
    except UnicodeDecodeError:
        raise ClamavFormatError("database header is not ASCII") from None
    fields = text.split(":")
    if fields[0] != "ClamAV-VDB" or len(fields) < 8:
        raise ClamavFormatError("not a ClamAV database header")
    try:
        version, sigs, flevel = int(fields[2]), int(fields[3]), int(fields[4])
        stime = int(fields[8]) if len(fields) > 8 and fields[8] else None
    except ValueError:
        raise ClamavFormatError("database header has a non-numeric field") from None
    return CvdHeader(parse_build_time(fields[1]), version, sigs, flevel, fields[5], fields[7],
                     stime)


def read_header(path: Path) -> CvdHeader | None:
    try:
        with path.open("rb") as f:
            return parse_cvd_header(f.read(HEADER_SIZE))
    except (OSError, ClamavFormatError):
        return None


def newest_daily(directory: Path) -> tuple[Path, CvdHeader] | None:
    """daily.cld or daily.cvd, whichever is newer (higher version, then later build)."""
    found = [(p, h) for p in (directory / "daily.cld", directory / "daily.cvd")
             if (h := read_header(p)) is not None]
    if not found:
        return None
    return max(found, key=lambda ph: (ph[1].version, ph[1].build_time))


def parse_clamscan_version(text: str) -> str | None:
    """`clamscan --version` prints "ClamAV 1.4.6/27832/Tue Nov 25 08:15:00 2026" (or just
    "ClamAV 1.4.6" without a database); the engine version is the part we use."""
    m = _VERSION.search(text[:400])
    return m.group(1) if m else None


def running_daemons(proc: Path = Path("/proc")) -> dict[str, tuple[int, ...]]:
    """PIDs of the ClamAV daemons by name, from /proc/<pid>/comm (the kernel's 15-char name)."""
    found: dict[str, list[int]] = {name: [] for name in DAEMONS}
    try:
        entries = list(proc.iterdir())
    except OSError:
        return {}
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            with (entry / "comm").open("rb") as f:
                comm = f.read(64).decode("utf-8", "replace").strip()
        except OSError:  # the process exited meanwhile, or hidepid
            continue
        if comm in found:
            found[comm].append(int(entry.name))
    return {name: tuple(sorted(pids)) for name, pids in found.items() if pids}


def clamscan_version() -> str | None:
    exe = shutil.which("clamscan")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_clamscan_version(out.stdout[:400].decode("utf-8", "replace"))


def collect_clamav(config: Path | None = None, proc: Path = Path("/proc"),
                   engine_version: str | None = None) -> tuple[AntivirusState, ...]:
    """ClamAV's state, or () when ClamAV is not installed at all. Enabled means a database is
    there for clamscan to use; realtime means clamonacc (on-access scanning) is running."""
    directory = database_directory(config)
    daily = newest_daily(directory)
    engine = engine_version or clamscan_version()
    installed = daily is not None or engine is not None or (config or DEFAULT_CONFIG).exists()
    if not installed:
        return ()
    daemons = running_daemons(proc)
    running = ", ".join(name for name in DAEMONS if name in daemons) or "none"
    if daily is None:
        where, built, version = f"no daily database in {directory}", None, None
    else:
        where, built, version = str(daily[0]), daily[1].build_time, str(daily[1].version)
    return (AntivirusState(product=clip(f"ClamAV {engine}" if engine else "ClamAV"),
                           enabled=daily is not None, realtime="clamonacc" in daemons,
                           definitions_time=built, definitions_version=version,
                           source=clip(f"{where}; daemons: {running}"),
                           updater_running="freshclam" in daemons),)
