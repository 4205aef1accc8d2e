"""The policy that applies to one user, as frozen dataclasses (one per TOML section).

Built only from values the schema rules already parsed and bounded; PosturePolicy is the posture
module's own dataclass, so login and `agent check` read the same [posture] table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from gateway.policy.posture import PosturePolicy


@dataclass(frozen=True, slots=True)
class RedirectionPolicy:
    clipboard: str
    clipboard_max_bytes: int
    printing: bool
    drives: bool
    devices: bool
    file_transfer: bool
    audio: bool


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle_timeout: timedelta
    max_duration: timedelta
    reconnect_grace: timedelta
    allowed_days: tuple[str, ...]
    allowed_hours: tuple[int, int]  # minutes since midnight, [start, end)
    calendar_exceptions: tuple[date, ...]
    max_concurrent: int


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    second_factor: str


@dataclass(frozen=True, slots=True)
class WatermarkPolicy:
    enabled: bool
    template: str
    opacity: float


@dataclass(frozen=True, slots=True)
class DisplayPolicy:
    quality: str  # "build-to-lossless", "lossy" or "lossless"
    max_frame_rate: int  # frames a second, once a frame is bigger than a typed glyph


@dataclass(frozen=True, slots=True)
class RecordingPolicy:
    enabled: bool
    retention_days: int
    replay_approval: bool
    approval_valid_for: timedelta


@dataclass(frozen=True, slots=True)
class WorkspacePolicy:
    session_command: str
    allowed_hosts: tuple[str, ...]
    home_url: str
    home_quota: int
    stop_unattached_after: timedelta


@dataclass(frozen=True, slots=True)
class KeysPolicy:
    valid_until: str | int  # "school-year-end" or a number of days

    def not_after(self, now: datetime) -> datetime | None:
        """None means the CA's default (the end of the school year)."""
        return None if isinstance(self.valid_until, str) else now + timedelta(
            days=self.valid_until)


@dataclass(frozen=True, slots=True)
class Policy:
    redirection: RedirectionPolicy
    posture: PosturePolicy
    session: SessionPolicy
    auth: AuthPolicy
    watermark: WatermarkPolicy
    display: DisplayPolicy
    recording: RecordingPolicy
    workspace: WorkspacePolicy
    keys: KeysPolicy


SECTIONS: dict[str, type] = {
    "redirection": RedirectionPolicy, "posture": PosturePolicy, "session": SessionPolicy,
    "auth": AuthPolicy, "watermark": WatermarkPolicy, "display": DisplayPolicy,
    "recording": RecordingPolicy,
    "workspace": WorkspacePolicy, "keys": KeysPolicy,
}


def build(values: dict[str, dict[str, Any]]) -> Policy:
    return Policy(**{name: cls(**values[name]) for name, cls in SECTIONS.items()})


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    policy: Policy
    provenance: dict[str, tuple[str, int]]  # "section.key" -> (file name, line)
    files: tuple[str, ...]  # the files that applied, in order
