"""May a session start now? Days, hours, closure dates and the concurrent-session limit, each
refusal with the rule (file and key) that made it — the answer to "why was I refused at 22:10?".

Pure: the caller passes `now` in the gateway's local time zone and the count of live sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.policy.effective import ResolvedPolicy
from gateway.policy.schema import DAYS
from gateway.wire.posture import PostureReport, assess_posture

DAY_NAMES = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
             "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    code: str
    reason: str  # one sentence for the teacher ("" when allowed)
    rule: str  # "file:line section.key" that decided, "" when allowed


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _rule(resolved: ResolvedPolicy, key: str) -> str:
    file, line = resolved.provenance.get(key, ("default.toml", 0))
    return f"{file}:{line} {key}"


def decide_session_start(resolved: ResolvedPolicy, *, now: datetime,
                         active_sessions: int) -> Decision:
    s = resolved.policy.session
    day = DAYS[now.weekday()]
    if now.date() in s.calendar_exceptions:
        return Decision(False, "closed-date", f"Staffroom is closed on {now:%Y-%m-%d} (a school "
                        "closure day).", _rule(resolved, "session.calendar_exceptions"))
    if day not in s.allowed_days:
        days = ", ".join(DAY_NAMES[d] for d in s.allowed_days) or "no day"
        return Decision(False, "day-not-allowed", f"Staffroom is open on {days}; today is "
                        f"{DAY_NAMES[day]}.", _rule(resolved, "session.allowed_days"))
    minute = now.hour * 60 + now.minute
    start, end = s.allowed_hours
    if not start <= minute < end:
        return Decision(False, "hours-not-allowed", f"Staffroom is open {_hhmm(start)}–"
                        f"{_hhmm(end)}; it is {now:%H:%M} now.",
                        _rule(resolved, "session.allowed_hours"))
    if active_sessions >= s.max_concurrent:
        return Decision(False, "too-many-sessions", f"You already have {active_sessions} "
                        f"session(s) open, the most allowed: close the other one first.",
                        _rule(resolved, "session.max_concurrent"))
    return Decision(True, "ok", "", "")


def explain(resolved: ResolvedPolicy, *, now: datetime, active_sessions: int = 0,
            posture: PostureReport | None = None) -> list[str]:
    """The lines `staffroom policy explain` prints: files applied, the decision and its rule."""
    p = resolved.policy
    lines = [f"Policy files applied: {', '.join(resolved.files)}"]
    decision = decide_session_start(resolved, now=now, active_sessions=active_sessions)
    if decision.allowed:
        lines.append(f"At {now:%Y-%m-%d %H:%M} ({DAY_NAMES[DAYS[now.weekday()]]}): a session "
                     "may start.")
    else:
        lines.append(f"At {now:%Y-%m-%d %H:%M}: REFUSED — {decision.reason}")
        lines.append(f"  rule: {decision.rule}")
    if posture is not None:
        for finding in assess_posture(posture, p.posture, now):
            mark = "ok" if finding.ok else f"REFUSED — {finding.fix}"
            lines.append(f"Posture {finding.check}: {finding.detail}: {mark}")
    lines.append(f"Second factor: {p.auth.second_factor} "
                 f"({_rule(resolved, 'auth.second_factor')})")
    off = [k for k in ("printing", "drives", "devices", "file_transfer", "audio")
           if not getattr(p.redirection, k)]
    lines.append(f"Clipboard: {p.redirection.clipboard}; off: {', '.join(off) or 'nothing'}")
    lines.append(f"Idle timeout {p.session.idle_timeout}, max duration {p.session.max_duration}, "
                 f"watermark {'on' if p.watermark.enabled else 'off'}, recording "
                 f"{'on' if p.recording.enabled else 'off'}")
    return lines
