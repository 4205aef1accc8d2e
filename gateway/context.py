"""What request handlers share: the gateway's state, wired once by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.datadir import DataDir, GatewayConfig
from gateway.store.base import Store


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class GatewayContext:
    data: DataDir
    config: GatewayConfig
    store: Store
    audit: Any  # gateway.audit.log.AuditLog
    ca: Any  # gateway.pki.ca.SchoolCA
    policies: Any  # gateway.policy.load.PolicySet
    clock: Callable[[], datetime] = utcnow
    # This gateway process's name among the nodes sharing one database (`gateway --node`).
    node: str = "local"
    extras: dict[str, Any] = field(default_factory=dict)
