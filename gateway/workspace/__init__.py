"""Workspaces: per-user TigerVNC desktops (provider ``xvnc``) or existing desktops (``vnc``)."""

from __future__ import annotations

from gateway.workspace.base import (
    Assignment,
    Endpoint,
    InvalidAssignment,
    WorkspaceError,
    WorkspaceProvider,
    WorkspaceStartFailed,
    WorkspaceUnavailable,
)
from gateway.workspace.manager import WorkspaceManager, WorkspaceStatus

__all__ = [
    "Assignment",
    "Endpoint",
    "InvalidAssignment",
    "WorkspaceError",
    "WorkspaceManager",
    "WorkspaceProvider",
    "WorkspaceStartFailed",
    "WorkspaceStatus",
    "WorkspaceUnavailable",
]
