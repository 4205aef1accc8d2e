"""Rows that let desktops and sessions outlive a gateway process (issue 12, part C).

`DesktopRecord`: one running sealed desktop, written when it starts and removed when it stops, so
the next gateway on the same host (or another node there) re-adopts it. `ResumeTicket`: what a
resume needs after the gateway that held the session died — the SHA-256 of the resume secret,
never the secret. Both are plain rows (`gateway.store.sqlite`; a PostgreSQL store ports the same
few statements): see docs/ADMINS.md, "Gateway restarts".

Attacker-controlled here: nothing; these are written by the gateway. Readers must still check
every pid against its start time (pids are reused) before trusting a row.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DesktopRecord:
    """A running desktop as the gateway that started it recorded it. Paths are absolute.

    ``*_pid`` are host pids of each room's PID 1 (bwrap's reaper); ``*_start`` their start
    times in clock ticks since boot (field 22 of /proc/PID/stat). No password is stored: the
    VNC password is in ``rfbauth`` (0600, obfuscated as Xvnc reads it).
    """

    user_id: str
    node: str
    host: str
    display: int
    server_pid: int
    server_start: int
    session_pid: int
    session_start: int
    runtime_dir: str  # the desktop's runtime dir: server/, session/, x11/, etc/, home
    rfb_socket: str  # Xvnc's Unix socket (RFB)
    rfbauth: str  # Xvnc's password file
    home: str  # DATA_DIR/homes/<user> on the host
    home_mode: str  # "image" (mounted ext4), "watch" (usage checks) or "none"
    uid: int
    gid: int
    switch: bool  # desktop runs under its own account (root gateway)
    sandbox_mode: str  # "user" or "root"
    marker: str  # NAME=VALUE in every desktop process's environment (finds setsid escapees)
    started_at: float  # wall clock, epoch seconds


@dataclass(frozen=True, slots=True)
class ResumeTicket:
    """A session's resume right, as durable as the database: single use (taken atomically)."""

    session_id: str
    digest: str  # SHA-256 hex of the resume secret the agent holds
    user_id: str
    cert_serial: str | None
    node: str  # the node that issued it (that held the session)
    fence: int  # the issuing node's revoke/disable count for the user when issued
    grace: float  # seconds a dropped session waits for its agent
    valid_until: float  # epoch seconds: no resume after this (kept fresh while connected)
