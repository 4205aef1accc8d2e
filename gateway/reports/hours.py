"""Work-hours records (勤務情報) from the audit trail: per teacher, school and month (pure).

Attacker-controlled here: nothing new — the records come from our own hash-chained log (their
strings were bounded when written); CSV cells a spreadsheet would run as formulas are neutralised
by the same rule as the audit export. Memory: one entry per session of the month asked for.

A session is the `session.start` (outcome ok) of a session id; its `session.end` gives the end
and the minutes with input (active) and without (idle). A session with no end yet (still live,
or the gateway stopped without ending it) is listed with `complete` false and the figures of its
last `session.activity` checkpoint (written every 15 minutes), end empty if it has none. The
month is a calendar month in the gateway's local time (a school's day), by the session's start.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, tzinfo

from gateway.audit.events import AuditRecord, parse_time

KINDS = ("session.start", "session.activity", "session.end")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class WorkSession:
    user: str
    school: str
    session: str
    start: str  # ISO 8601, gateway local time
    end: str  # "" while no session.end
    active_minutes: int
    idle_minutes: int
    ended_by: str  # the End code ("normal", "idle_timeout", "posture", …), "" if not ended
    complete: bool
    name: str = ""  # the teacher's display name (from the accounts, filled in by the API)


COLUMNS = ("user", "name", "school", "session", "start", "end", "active_minutes",
           "idle_minutes", "ended_by", "complete")


@dataclass(frozen=True, slots=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """"2027-04" -> Month; ValueError with one sentence otherwise."""
        try:
            year, month = (int(p) for p in text.split("-"))
            if len(text) != 7 or not 2000 <= year <= 9999 or not 1 <= month <= 12:
                raise ValueError
        except ValueError:
            raise ValueError(f"{text[:20]!r} is not a month: give it as YYYY-MM, e.g. "
                             "2027-04.") from None
        return cls(year, month)

    def bounds(self, tz: tzinfo | None = None) -> tuple[datetime, datetime]:
        """[first instant, first instant of the next month) in `tz` (default: local time)."""
        start = datetime(self.year, self.month, 1)
        nxt = datetime(self.year + self.month // 12, self.month % 12 + 1, 1)
        if tz is None:
            return start.astimezone(), nxt.astimezone()
        return start.replace(tzinfo=tz), nxt.replace(tzinfo=tz)


def _local(text: str, tz: tzinfo | None) -> str:
    return parse_time(text).astimezone(tz).isoformat(timespec="seconds")


def work_sessions(records: Iterable[AuditRecord], month: Month, *, school: str | None = None,
                  user: str | None = None, tz: tzinfo | None = None) -> list[WorkSession]:
    """The month's sessions from session.start/session.end records (any order of reading),
    oldest first. Records from before the month are ignored; ends may come after it."""
    low, high = month.bounds(tz)
    starts: dict[str, AuditRecord] = {}
    ends: dict[str, AuditRecord] = {}
    checkpoints: dict[str, AuditRecord] = {}
    for r in records:
        e = r.event
        if e.session is None or e.outcome != "ok" or e.kind not in KINDS:
            continue
        if (school is not None and e.school != school) or (user is not None and
                                                           e.subject != user):
            continue
        if e.kind == "session.start":
            when = parse_time(r.time)
            if low <= when < high:
                starts[e.session] = r
        elif e.kind == "session.activity":
            checkpoints[e.session] = r  # the log is in order: the last one wins
        else:
            ends[e.session] = r
    out = []
    for sid, s in starts.items():
        end = ends.get(sid)
        last = end if end is not None else checkpoints.get(sid)
        d = last.event.details if last is not None else {}
        out.append(WorkSession(
            user=s.event.subject or "", school=s.event.school or "", session=sid,
            start=_local(s.time, tz), end=_local(last.time, tz) if last is not None else "",
            active_minutes=_int(d.get("active_minutes")), idle_minutes=_int(d.get("idle_minutes")),
            ended_by=str(d.get("code") or ""), complete=end is not None))
    return sorted(out, key=lambda w: (w.start, w.user))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def totals(sessions: Iterable[WorkSession]) -> list[dict[str, object]]:
    """Per teacher: sessions, active and idle minutes (the monthly sheet's summary)."""
    by_user: dict[tuple[str, str], dict[str, object]] = {}
    for w in sessions:
        t = by_user.setdefault((w.school, w.user), {"user": w.user, "school": w.school,
                                                    "sessions": 0, "active_minutes": 0,
                                                    "idle_minutes": 0})
        t["sessions"] = int(t["sessions"]) + 1  # type: ignore[call-overload]
        t["active_minutes"] = int(t["active_minutes"]) + w.active_minutes  # type: ignore
        t["idle_minutes"] = int(t["idle_minutes"]) + w.idle_minutes  # type: ignore
    return [by_user[k] for k in sorted(by_user)]


def to_csv(sessions: Iterable[WorkSession]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for w in sessions:
        row = asdict(w)
        writer.writerow([_cell(row[n]) for n in COLUMNS])
    return out.getvalue()


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def search_window(month: Month, tz: tzinfo | None = None) -> tuple[datetime, datetime]:
    """The audit time range to read: the month, plus a day for sessions ending after it."""
    low, high = month.bounds(tz)
    return low, high + timedelta(days=1)
