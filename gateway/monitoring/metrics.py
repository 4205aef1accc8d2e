"""The gateway's Prometheus metrics: one registry per gateway, fed by thin hooks in the shells.

Attacker-controlled here: nothing; label values come from a fixed set (outcomes, denial codes
chosen by our own code), so no peer can grow the series without bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

METRICS_KEY = "metrics"  # in GatewayContext.extras
# Frame encodes take ~1 ms (a glyph) to ~100 ms (a full-screen photo); audit writes one fsync.
ENCODE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
AUDIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

T = TypeVar("T")


class SessionTotals(Collector):
    """Live sessions and frames/bytes sent, read from the broker when scraped (nothing on the
    frame path but the counters sessions already keep)."""

    def __init__(self, sessions: Callable[[], list[Any]]) -> None:
        self._sessions = sessions
        self.ended_frames = 0
        self.ended_bytes = 0

    def session_ended(self, frames: int, nbytes: int) -> None:
        self.ended_frames += frames
        self.ended_bytes += nbytes

    def collect(self) -> Iterator[Any]:
        live = [s for s in self._sessions() if not s.ended]
        yield GaugeMetricFamily("staffroom_live_sessions", "Live teacher sessions.",
                                value=len(live))
        yield GaugeMetricFamily("staffroom_attached_sessions",
                                "Live sessions with their tunnel attached.",
                                value=sum(1 for s in live if s.ws is not None))
        yield CounterMetricFamily("staffroom_frames_sent", "Display frames sent to viewers.",
                                  value=self.ended_frames + sum(s.frames_sent for s in live))
        yield CounterMetricFamily("staffroom_bytes_sent", "Display bytes sent to viewers.",
                                  value=self.ended_bytes + sum(s.bytes_sent for s in live))


class Metrics:
    """Every metric the gateway exports, on its own registry (never the process-global one, so
    two gateways in one test process do not collide)."""

    def __init__(self, sessions: Callable[[], list[Any]] = list) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sessions = SessionTotals(sessions)
        self.registry.register(self.sessions)
        self.logins = Counter("staffroom_logins", "Teacher login decisions by outcome and code.",
                              ["outcome", "code"], registry=self.registry)
        self.encode_seconds = Histogram("staffroom_frame_encode_seconds",
                                        "Time to encode one display frame.",
                                        buckets=ENCODE_BUCKETS, registry=self.registry)
        self.audit_write_seconds = Histogram("staffroom_audit_write_seconds",
                                             "Time to append one audit record durably (fsync).",
                                             buckets=AUDIT_BUCKETS, registry=self.registry)
        self.desktop_starts = Counter("staffroom_desktop_starts",
                                      "Desktops attached for a session: started anew or reused, "
                                      "or failed.", ["outcome"], registry=self.registry)
        self.posture_rechecks = Counter("staffroom_posture_rechecks",
                                        "In-session posture re-checks by outcome.", ["outcome"],
                                        registry=self.registry)

    def timed_encode(self, encode: Callable[[Any], T], job: Any) -> T:
        """encode(job), observing its duration (runs in the encoder thread or inline)."""
        start = time.perf_counter()
        try:
            return encode(job)
        finally:
            self.encode_seconds.observe(time.perf_counter() - start)


def metrics_of(extras: dict[str, Any]) -> Metrics:
    """The gateway's Metrics, made on first use (tests build contexts without the app)."""
    found = extras.get(METRICS_KEY)
    if found is None:
        broker = extras.get

        def sessions() -> list[Any]:
            b = broker("broker")
            return list(b.sessions.values()) if b is not None else []
        found = extras[METRICS_KEY] = Metrics(sessions)
    return found  # type: ignore[no-any-return]
