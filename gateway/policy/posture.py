"""The gateway's posture decision: may this home PC connect, given the [posture] policy (pure).

Attacker-controlled here: the PostureReport (already parsed strictly and bounded by
gateway.wire.posture.PostureReport.from_json); `now` is the gateway's clock, never the report's.

The assessment itself lives beside the report format in gateway.wire.posture, because the agent
may import only gateway.wire and must show the teacher the same verdict before connecting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.wire.posture import (
    FUTURE_TOLERANCE,
    PostureCode,
    PostureFinding,
    PosturePolicy,
    PostureReport,
    assess_posture,
)

__all__ = ["FUTURE_TOLERANCE", "PostureCode", "PostureDecision", "PostureFinding",
           "PosturePolicy", "decide_posture"]


@dataclass(frozen=True, slots=True)
class PostureDecision:
    allowed: bool
    code: str  # a PostureCode value: "ok", "definitions-stale", …
    reason: str  # one sentence for the teacher ("" when allowed); the agent prints it


def decide_posture(report: PostureReport, policy: PosturePolicy, now: datetime) -> PostureDecision:
    """The first failing finding decides; every finding passing allows the login."""
    for finding in assess_posture(report, policy, now):
        if not finding.ok:
            return PostureDecision(False, finding.code.value, finding.fix)
    return PostureDecision(True, PostureCode.OK.value, "")
