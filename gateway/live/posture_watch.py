"""Posture during a session: the decisions on each signed re-check and on the clock (pure).

Attacker-controlled here: the re-check (already decoded by gateway.wire.recheck; the shell tells
us whether its signature verified). `now` is the gateway's monotonic clock, `wall` its UTC time;
nothing here reads a clock or does I/O. The core returns actions; the session performs them:
audit first, then tell the teacher, then (maybe) end.

Rules: a report must verify and carry a larger sequence number than any before (else it is
refused and audited, and counts as no report); it is assessed with the login's own rules
(gateway.wire.posture.assess_posture). A failing report, or none for overdue_after(interval)
seconds, warns the teacher; with on_fail = "end" the session ends fail_grace after the first
failure unless a passing report arrives first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.wire.posture import PostureFormatError, PosturePolicy, PostureReport, assess_posture
from gateway.wire.recheck import overdue_after

REWARN_EVERY = 30.0  # seconds: the countdown in the teacher's banner (and a reloaded page) catch up
MISSING_FIX = ("This computer stopped sending its security check: keep `staffroom agent "
               "connect` running, or run it again.")


@dataclass(frozen=True, slots=True)
class Audit:
    outcome: str  # "ok", "failed", "missing", "refused"
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Warn:
    """Tell the teacher what is wrong and what to do (stays up until Clear)."""

    text: str
    seconds_left: int | None  # until the session ends; None under on_fail = "warn"


@dataclass(frozen=True, slots=True)
class Clear:
    text: str


@dataclass(frozen=True, slots=True)
class End:
    text: str


Action = Audit | Warn | Clear | End


def _duration(seconds: float) -> str:
    """"5 minutes", "4 minutes 30 seconds", "45 seconds"."""
    minutes, s = divmod(max(0, round(seconds)), 60)
    parts = ([f"{minutes} minute{'s' if minutes != 1 else ''}"] if minutes else []) + (
        [f"{s} second{'s' if s != 1 else ''}"] if s or not minutes else [])
    return " ".join(parts)


@dataclass
class PostureWatch:
    policy: PosturePolicy
    last_report: float  # monotonic time of the last valid report (the login's, to start)
    last_seq: int = 0
    failing_since: float | None = None
    failing_code: str = ""
    failing_fix: str = ""
    _missing: bool = False
    _warned_at: float = 0.0
    _warned: str = field(default="", repr=False)

    @property
    def interval(self) -> float:
        return self.policy.recheck_every.total_seconds()

    @property
    def grace(self) -> float:
        return self.policy.fail_grace.total_seconds()

    def resumed(self, now: float) -> None:
        """A resume's login carried a fresh posture that passed: it counts as a report."""
        self.last_report, self._missing = now, False

    def report(self, *, seq: int, verified: bool, posture: dict[str, Any], reason: str,
               now: float, wall: datetime) -> list[Action]:
        if not verified:
            return [Audit("refused", {"seq": seq, "error": "bad-signature"})]
        if seq <= self.last_seq:
            return [Audit("refused", {"seq": seq, "error": "replayed", "last_seq": self.last_seq})]
        self.last_seq, self.last_report, self._missing = seq, now, False
        base = {"seq": seq, "reason": reason}
        try:
            parsed = PostureReport.from_json(posture)
        except PostureFormatError as e:
            return [Audit("failed", {**base, "code": "bad-posture", "error": str(e)[:200]}),
                    *self._fail(now, "bad-posture", f"The security check could not be read "
                                f"({e}): update Staffroom on this computer.")]
        for finding in assess_posture(parsed, self.policy, wall):
            if not finding.ok:
                return [Audit("failed", {**base, "code": finding.code.value,
                                         "detail": finding.detail[:200]}),
                        *self._fail(now, finding.code.value, finding.fix)]
        actions: list[Action] = [Audit("ok", base)]
        if self.failing_since is not None or self._warned:
            actions.append(Clear("This computer passes the security check again."))
        self.failing_since, self.failing_code, self._warned = None, "", ""
        return actions

    def tick(self, now: float) -> list[Action]:
        """Once a second: end a session whose grace ran out; notice a missing report."""
        if self.failing_since is not None and self.policy.on_fail == "end":
            if now - self.failing_since >= self.grace:
                return [self._end()]
            if now - self._warned_at >= REWARN_EVERY:
                return self._fail(now, self.failing_code, self.failing_fix)
        if not self._missing and now - self.last_report > overdue_after(self.interval):
            self._missing = True
            return [Audit("missing", {"code": "no-report", "last_seq": self.last_seq,
                                      "seconds": int(now - self.last_report)}),
                    *self._fail(now, "no-report", MISSING_FIX)]
        return []

    def _fail(self, now: float, code: str, fix: str) -> list[Action]:
        if self.policy.on_fail == "warn":
            if self._warned == code:
                return []
            self._warned, self.failing_code, self.failing_fix = code, code, fix
            return [Warn(fix, None)]
        if self.failing_since is None:
            self.failing_since = now
        self.failing_code, self.failing_fix = code, fix
        left = self.grace - (now - self.failing_since)
        if left <= 0:
            return [self._end()]
        self._warned_at = now
        return [Warn(f"{fix} Otherwise the session ends in {_duration(left)}.", int(left))]

    def _end(self) -> End:
        return End(f"The session ended because this computer failed the security check: "
                   f"{self.failing_fix}")
