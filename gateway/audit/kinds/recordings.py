"""Typed audit kinds of recordings, replay requests, reports, exports and workspaces.

Written by gateway/api/ (recordings, replay_requests, reports, audit, workspaces) and
gateway/app.py (retention). Field names are the stored detail keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

# --- recordings (gateway/api/recordings.py, gateway/app.py) --------------------------------


@dataclass(frozen=True, slots=True)
class RecordingDeleted:
    KIND: ClassVar[str] = "recording.delete"
    OUTCOME: ClassVar[str] = "ok"
    recording: str
    reason: str | None = None  # "retention" when retention deleted it
    retention_days: int | None = None


@dataclass(frozen=True, slots=True)
class RecordingExported:
    KIND: ClassVar[str] = "recording.export"
    OUTCOME: ClassVar[str] = "ok"
    recording: str
    request: str | None  # the approved replay request, None when no approval is required


@dataclass(frozen=True, slots=True)
class RecordingReplayed:
    KIND: ClassVar[str] = "recording.replay"
    OUTCOME: ClassVar[str] = "ok"
    recording: str
    t_ms: int
    request: str | None


@dataclass(frozen=True, slots=True)
class RecordingExportRefused:
    KIND: ClassVar[str] = "recording.export"
    OUTCOME: ClassVar[str] = "denied"
    recording: str
    reason: str = "no-approval"


@dataclass(frozen=True, slots=True)
class RecordingReplayRefused:
    KIND: ClassVar[str] = "recording.replay"
    OUTCOME: ClassVar[str] = "denied"
    recording: str
    reason: str = "no-approval"


# --- two-person replay (gateway/api/replay_requests.py) ------------------------------------

@dataclass(frozen=True, slots=True)
class ReplayRequested:
    KIND: ClassVar[str] = "recording.request"
    OUTCOME: ClassVar[str] = "ok"
    recording: str
    request: str
    purpose: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class ReplayApproved:
    KIND: ClassVar[str] = "recording.approve"
    OUTCOME: ClassVar[str] = "ok"
    recording: str
    request: str
    requester: str
    purpose: str
    note: str | None
    expires: str | None


@dataclass(frozen=True, slots=True)
class ReplayDeclined:
    KIND: ClassVar[str] = "recording.decline"
    OUTCOME: ClassVar[str] = "ok"
    recording: str
    request: str
    requester: str
    purpose: str
    note: str | None
    expires: str | None


@dataclass(frozen=True, slots=True)
class ReplayApproveRefused:
    KIND: ClassVar[str] = "recording.approve"
    OUTCOME: ClassVar[str] = "denied"
    recording: str
    request: str
    requester: str
    purpose: str
    error: str


@dataclass(frozen=True, slots=True)
class ReplayDeclineRefused:
    KIND: ClassVar[str] = "recording.decline"
    OUTCOME: ClassVar[str] = "denied"
    recording: str
    request: str
    requester: str
    purpose: str
    error: str


# --- reports and exports (gateway/api/reports.py, gateway/api/audit.py) --------------------

@dataclass(frozen=True, slots=True)
class HoursReported:
    KIND: ClassVar[str] = "report.hours"
    OUTCOME: ClassVar[str] = "ok"
    month: str  # "2026-04"
    sessions: int


@dataclass(frozen=True, slots=True)
class ReceiptChecked:
    KIND: ClassVar[str] = "report.receipt_check"
    OUTCOME: ClassVar[str] = "ok"
    session: str


@dataclass(frozen=True, slots=True)
class ReceiptInvalid:
    KIND: ClassVar[str] = "report.receipt_check"
    OUTCOME: ClassVar[str] = "invalid"
    error: str


@dataclass(frozen=True, slots=True)
class AuditExported:
    """The export's format and the search filters given (absent ones are not stored)."""

    KIND: ClassVar[str] = "export.audit"
    OUTCOME: ClassVar[str] = "ok"
    format: str
    user: str | None = None
    kind: str | None = None
    since: str | None = None
    until: str | None = None


# --- workspaces (gateway/api/workspaces.py) ------------------------------------------------

@dataclass(frozen=True, slots=True)
class WorkspaceAssigned:
    KIND: ClassVar[str] = "workspace.assign"
    OUTCOME: ClassVar[str] = "ok"
    provider: str
    address: str | None  # host:port of a "vnc" desktop, None for the gateway's own


@dataclass(frozen=True, slots=True)
class WorkspaceAssignRefused:
    KIND: ClassVar[str] = "workspace.assign"
    OUTCOME: ClassVar[str] = "denied"
    provider: str
    address: str
    reason: str = "not on the allow-list"


@dataclass(frozen=True, slots=True)
class WorkspaceStopped:
    KIND: ClassVar[str] = "workspace.stop"
    OUTCOME: ClassVar[str] = "ok"
    reason: str
    running: bool
