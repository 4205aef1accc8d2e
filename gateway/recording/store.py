"""Where recordings live, what is there, and what retention removes.

Attacker-controlled here: the contents of files under the recordings root (headers and seals are
parsed with the format's bounds; a file that does not parse is listed as damaged, never fatal).
Limits: listing reads at most one header (≤ 1 KiB) and one seal (153 bytes) per file.

Layout: ``RECORDINGS/<yyyy>/<mm>/<id>.srec`` (RECORDINGS: gateway.json "recordings_dir", by
default DATA_DIR/recordings) (UTC year and month of the start) with the
seek index beside it as ``<id>.srec.idx``. This module is the storage seam: an object-store backend
(S3) would offer the same four functions over keys instead of paths.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from gateway.recording import format as fmt
from gateway.recording.index import index_path

log = logging.getLogger(__name__)

SUFFIX: Final = ".srec"
_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    id: str
    path: Path
    session: str
    user: str
    school: str
    started: datetime  # UTC
    ended: datetime | None  # None: not sealed (still running, or cut off)
    bytes: int
    sealed: bool


def recordings_root(data_dir: Path, configured: str | None = None) -> Path:
    """gateway.json's "recordings_dir" when set (the one location every node writes to and
    reads from; a relative path is taken from DATA_DIR), else DATA_DIR/recordings."""
    return Path(data_dir) / configured if configured else Path(data_dir) / "recordings"


def new_recording_id(started: float) -> str:
    """Sortable by start time, unguessable: ``20250407T081500Z-3f9a1c2b4d5e``."""
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(6)}"


def recording_path(root: Path, recording_id: str, started: float) -> Path:
    if not _ID.match(recording_id):
        raise ValueError("not a recording id")  # ids name files: no separators, no dots
    day = datetime.fromtimestamp(started, UTC)
    return Path(root) / f"{day:%Y}" / f"{day:%m}" / f"{recording_id}{SUFFIX}"


def find_recording(root: Path, recording_id: str) -> Path | None:
    """The file of a recording id (the id carries its start month), or None."""
    if not _ID.match(recording_id):
        return None
    path = Path(root) / recording_id[:4] / recording_id[4:6] / f"{recording_id}{SUFFIX}"
    return path if path.is_file() else None


def read_info(path: Path) -> RecordingInfo:
    """Header and seal of one file (the seal is not verified here: see verify_recording)."""
    with path.open("rb") as f:
        prelude = f.read(12)
        raw = prelude + f.read(fmt.header_length(prelude) - len(prelude))
        header = fmt.decode_header(raw)
        size = os.fstat(f.fileno()).st_size
        seal = None
        if size >= len(raw) + fmt.SEAL_CHUNK_SIZE:
            f.seek(size - fmt.SEAL_CHUNK_SIZE)
            seal = _seal(f.read(fmt.SEAL_CHUNK_SIZE), fmt.header_hash(raw))
    started = datetime.fromtimestamp(header.started_ms / 1000, UTC)
    ended = started + timedelta(milliseconds=seal) if seal is not None else None
    return RecordingInfo(
        header.recording_id, path, header.session_id, header.user, header.school, started,
        ended, size, seal is not None,
    )  # fmt: skip


def _seal(raw: bytes, header_hash: bytes) -> int | None:
    """The seal's t_ms if the last chunk of the file is a seal of this recording."""
    try:
        ctype, _, length, t_ms = fmt.parse_chunk_head(raw[: fmt.CHUNK_HEAD.size])
        if ctype is not fmt.ChunkType.SEAL or length != len(raw) - fmt.CHUNK_HEAD.size:
            return None
        seal, _ = fmt.decode_seal(raw[fmt.CHUNK_HEAD.size :])
    except fmt.FormatError:
        return None
    return t_ms if seal.header_hash == header_hash else None


def list_recordings(root: Path) -> list[RecordingInfo]:
    """Every readable recording under root, oldest first; damaged files are logged and skipped."""
    out = []
    for path in sorted(Path(root).glob(f"[0-9][0-9][0-9][0-9]/[0-9][0-9]/*{SUFFIX}")):
        try:
            out.append(read_info(path))
        except (OSError, fmt.FormatError) as exc:
            log.warning("recording %s is unreadable: %s", path.name, exc)
    return sorted(out, key=lambda i: (i.started, i.id))


def expired(infos: list[RecordingInfo], now: datetime, keep_days: int) -> list[RecordingInfo]:
    """Recordings that ended (or, unsealed, started) more than keep_days before now. Pure."""
    limit = now - timedelta(days=keep_days)
    return [i for i in infos if (i.ended or i.started) < limit]


def delete(path: Path, claimed: Path | None = None) -> None:
    """Remove a recording and its index (a missing index is fine); `claimed`: the name
    `claim` gave the file."""
    Path(claimed or path).unlink()
    index_path(Path(path)).unlink(missing_ok=True)


def claim(path: Path, node: str) -> Path | None:
    """Take a recording for deletion with one atomic rename, so that of several nodes sweeping
    one shared location exactly one audits and deletes it; None when another node has it.
    The claimed name no longer ends in .srec, so listings skip it."""
    claimed = Path(path).with_name(f"{Path(path).name}.{node}.claimed")
    try:
        os.rename(path, claimed)
    except FileNotFoundError:
        return None
    return claimed


def unclaim(claimed: Path, path: Path) -> None:
    """Give a claimed recording back (its deletion could not be audited)."""
    os.rename(claimed, path)
