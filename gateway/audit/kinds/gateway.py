"""Typed audit kinds of the gateway itself: set-up, start/stop, health, TLS, metrics.

Written by gateway/setup.py, gateway/app.py, gateway/health.py and
gateway/monitoring/endpoints.py. Field names are the stored detail keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class GatewayInitialised:
    KIND: ClassVar[str] = "gateway.init"
    OUTCOME: ClassVar[str] = "ok"
    hostnames: list[str]
    ca_curve: str


@dataclass(frozen=True, slots=True)
class GatewayStarted:
    KIND: ClassVar[str] = "gateway.start"
    OUTCOME: ClassVar[str] = "ok"
    listen: str


@dataclass(frozen=True, slots=True)
class GatewayStopped:
    KIND: ClassVar[str] = "gateway.stop"
    OUTCOME: ClassVar[str] = "ok"


@dataclass(frozen=True, slots=True)
class WritesResumed:
    """The audit log could be written again after a failure (a full disk)."""

    KIND: ClassVar[str] = "gateway.resumed"
    OUTCOME: ClassVar[str] = "ok"
    after: str  # the sentence health showed while it failed


@dataclass(frozen=True, slots=True)
class TlsReloaded:
    KIND: ClassVar[str] = "tls.reload"
    OUTCOME: ClassVar[str] = "ok"
    serial: str
    not_after: str


@dataclass(frozen=True, slots=True)
class MetricsRefused:
    KIND: ClassVar[str] = "metrics.read"
    OUTCOME: ClassVar[str] = "denied"
    reason: str = "address not in metrics_allow"
