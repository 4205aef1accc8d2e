"""May a session start now? Days, hours, closure dates and the concurrent-session limit, each
refusal with the rule (file and key) that made it — the answer to "why was I refused at 22:10?".

Attacker-controlled here: nothing directly — the subject comes from a verified certificate and
the store, `now` from the gateway's clock; a posture report reaches explain() already parsed and
bounded by PostureReport.from_json. Limits: none needed, every value here is the board's policy.

Pure: the caller passes an aware `now` (and the gateway's local zone as `tz`, or `now` already
in it) and the count of the user's live sessions; nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from gateway.policy.effective import ResolvedPolicy
from gateway.policy.schema import DAYS
from gateway.policy.units import format_duration
from gateway.wire.posture import PostureReport, assess_posture

DAY_NAMES = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
             "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}
REDIRECTIONS = ("printing", "drives", "devices", "file_transfer", "audio")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    code: str  # "ok", "closed-date", "day-not-allowed", "hours-not-allowed", "too-many-sessions"
    reason: str  # one sentence for the teacher ("" when allowed)
    rule: str  # "file:line section.key" that decided ("" when allowed)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _rule(resolved: ResolvedPolicy, key: str) -> str:
    file, line = resolved.provenance.get(key, ("default.toml", 0))
    return f"{file}:{line} {key}"


def _days(days: tuple[str, ...]) -> str:
    """The allowed days as a teacher says them: "on school days", "every day", "on Mon, Wed"."""
    if set(days) == set(DAYS):
        return "every day"
    if set(days) == set(DAYS[:5]):
        return "on school days"
    return "on " + (", ".join(DAY_NAMES[d] for d in DAYS if d in days) or "no day")


def _local(now: datetime, tz: tzinfo | None) -> datetime:
    # Days and hours are the gateway's wall clock: a naive time would silently mean "UTC or
    # whatever the host says", so it is a programming error.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("decide_session_start needs an aware datetime")
    return now.astimezone(tz) if tz is not None else now


def decide_session_start(resolved: ResolvedPolicy, *, now: datetime, active_sessions: int,
                         tz: tzinfo | None = None) -> Decision:
    """May a new session start at `now` (aware; converted to `tz`, the gateway's local zone,
    when given) with `active_sessions` already open for this user? Resumes do not ask."""
    s = resolved.policy.session
    now = _local(now, tz)
    day = DAYS[now.weekday()]
    hours = "" if s.allowed_hours == (0, 24 * 60) else \
        f"{_hhmm(s.allowed_hours[0])}–{_hhmm(s.allowed_hours[1])} "
    opening = f"Staffroom is open {hours}{_days(s.allowed_days)}"
    if now.date() in s.calendar_exceptions:
        return Decision(False, "closed-date", f"Staffroom is closed today ({now:%Y-%m-%d}, a "
                        "school closure day).", _rule(resolved, "session.calendar_exceptions"))
    if day not in s.allowed_days:
        return Decision(False, "day-not-allowed", f"{opening}; today is {DAY_NAMES[day]}.",
                        _rule(resolved, "session.allowed_days"))
    start, end = s.allowed_hours
    if not start <= now.hour * 60 + now.minute < end:
        return Decision(False, "hours-not-allowed", f"{opening}; it is {now:%H:%M} now.",
                        _rule(resolved, "session.allowed_hours"))
    if active_sessions >= s.max_concurrent:
        limit = "one session at a time" if s.max_concurrent == 1 else \
            f"{s.max_concurrent} sessions at a time"
        have = "a session" if active_sessions == 1 else f"{active_sessions} sessions"
        return Decision(False, "too-many-sessions", f"You already have {have} open and "
                        f"Staffroom allows {limit}: close one first.",
                        _rule(resolved, "session.max_concurrent"))
    return Decision(True, "ok", "", "")


def explain(resolved: ResolvedPolicy, *, now: datetime, active_sessions: int = 0,
            posture: PostureReport | None = None, tz: tzinfo | None = None) -> list[str]:
    """The lines `staffroom policy explain` prints: the files applied, whether a session may
    start at `now` and the rule that decided, the posture verdict for a saved report, and every
    key a narrower file changed, with its file:line."""
    p = resolved.policy
    now = _local(now, tz)
    lines = [f"Policy files applied: {', '.join(resolved.files)}"]
    decision = decide_session_start(resolved, now=now, active_sessions=active_sessions)
    when = f"At {now:%Y-%m-%d %H:%M} ({DAY_NAMES[DAYS[now.weekday()]]})"
    if decision.allowed:
        lines.append(f"{when}: a session may start.")
    else:
        lines.append(f"{when}: REFUSED — {decision.reason}")
        lines.append(f"  rule: {decision.rule}")
    if posture is not None:
        for finding in assess_posture(posture, p.posture, now):
            mark = "ok" if finding.ok else f"REFUSED — {finding.fix}"
            lines.append(f"Posture {finding.check}: {finding.detail}: {mark}")
    lines.append(f"Second factor: {p.auth.second_factor} "
                 f"({_rule(resolved, 'auth.second_factor')})")
    on = [k for k in REDIRECTIONS if getattr(p.redirection, k)]
    lines.append(f"Clipboard: {p.redirection.clipboard}; also on: {', '.join(on) or 'nothing'}")
    lines.append(f"Idle timeout {format_duration(p.session.idle_timeout)}, max duration "
                 f"{format_duration(p.session.max_duration)}, "
                 f"watermark {'on' if p.watermark.enabled else 'off'}, recording "
                 f"{'on' if p.recording.enabled else 'off'}")
    rate = p.display.max_frame_rate
    lines.append(f"Display: {p.display.quality}, "
                 f"{f'at most {rate} frames a second' if rate else 'no frame-rate limit'} "
                 f"({_rule(resolved, 'display.quality')}; "
                 f"{_rule(resolved, 'display.max_frame_rate')})")
    for key, (file, line) in sorted(resolved.provenance.items()):
        if file != resolved.files[0]:
            lines.append(f"  {key} set by {file}:{line}")
    return lines
