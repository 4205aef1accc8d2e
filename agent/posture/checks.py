"""What `staffroom agent check` prints: one line per check, ✔ or ✘, and one sentence to fix it.

The verdicts come from gateway.wire.posture.assess_posture with the same PosturePolicy numbers the
gateway uses, so a green check here means the gateway's posture decision will allow the login.
The lead adds token and gateway checks by building more Check values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.wire.posture import PosturePolicy, PostureReport, assess_posture

NAMES = {"os": "Operating system", "antivirus": "Antivirus", "realtime": "Real-time protection",
         "definitions": "Antivirus definitions"}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # ONE sentence saying how to fix it; "" when ok
    code: str = "ok"  # the gateway's denial code for the same finding

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix,
                "code": self.code}


def posture_checks(report: PostureReport, now: datetime,
                   policy: PosturePolicy | None = None) -> tuple[Check, ...]:
    return tuple(Check(NAMES.get(f.check, f.check), f.ok, f.detail, f.fix, f.code.value)
                 for f in assess_posture(report, policy or PosturePolicy(), now))


def format_checks(checks: Sequence[Check]) -> str:
    """One aligned line per check: "✔ Antivirus   ClamAV 1.4.6" or "✘ … — <fix>"."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        line = f"{'✔' if c.ok else '✘'} {c.name.ljust(width)}  {c.detail}"
        lines.append(f"{line} — {c.fix}" if c.fix and not c.ok else line)
    return "\n".join(lines)


def checks_to_json(checks: Sequence[Check]) -> dict[str, Any]:
    return {"ok": all(c.ok for c in checks), "checks": [c.to_json() for c in checks]}
