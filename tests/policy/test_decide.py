"""decide_session_start at its boundaries, each refusal in the teacher's words and naming the
rule (file:line key) that made it; explain() answers "why was I refused at 22:10?"."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy.decide import decide_session_start, explain
from gateway.policy.effective import ResolvedPolicy
from gateway.policy.load import load_policies
from tests.fixtures.policy import SHIPPED_POLICIES, default_line

JST = timezone(timedelta(hours=9))
HOURS = ('[match]\nroles = ["teacher"]\n\n[session]\nallowed_hours = "07:00-21:00"\n'
         'allowed_days = ["mon", "tue", "wed", "thu", "fri"]\n'
         'calendar_exceptions = ["2027-01-04"]\n')
TWO = '[match]\nusers = ["t.two"]\n\n[session]\nmax_concurrent = 2\n'


@pytest.fixture
def teacher(policy_dir: Path, add_policy: Callable[[str, str], Path]) -> ResolvedPolicy:
    add_policy("10-hours.toml", HOURS)
    add_policy("20-two.toml", TWO)
    return load_policies(policy_dir).resolve("t.sato", "teacher", "kita-es")


def at(day: int, hour: int, minute: int = 0, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JST)


# 2026-11-25 is a Wednesday, 2026-11-28 a Saturday, 2027-01-04 a Monday and a closure day.
CASES = [
    ("06:59", at(25, 6, 59), 0, "hours-not-allowed",
     "Staffroom is open 07:00–21:00 on school days; it is 06:59 now.", "10-hours.toml:5 "
     "session.allowed_hours"),
    ("07:00", at(25, 7, 0), 0, "ok", "", ""),
    ("20:59", at(25, 20, 59), 0, "ok", "", ""),
    ("21:00", at(25, 21, 0), 0, "hours-not-allowed",
     "Staffroom is open 07:00–21:00 on school days; it is 21:00 now.", "10-hours.toml:5 "
     "session.allowed_hours"),
    ("22:10", at(25, 22, 10), 0, "hours-not-allowed",
     "Staffroom is open 07:00–21:00 on school days; it is 22:10 now.", "10-hours.toml:5 "
     "session.allowed_hours"),
    ("Saturday", at(28, 10), 0, "day-not-allowed",
     "Staffroom is open 07:00–21:00 on school days; today is Saturday.", "10-hours.toml:6 "
     "session.allowed_days"),
    ("closure date", at(4, 10, month=1, year=2027), 0, "closed-date",
     "Staffroom is closed today (2027-01-04, a school closure day).", "10-hours.toml:7 "
     "session.calendar_exceptions"),
    ("day after closure", at(5, 10, month=1, year=2027), 0, "ok", "", ""),
    ("under the limit", at(25, 10), 0, "ok", "", ""),
    ("at the limit", at(25, 10), 1, "too-many-sessions",
     "You already have a session open and Staffroom allows one session at a time: close one "
     "first.", "default.toml:40 session.max_concurrent"),
    # The gateway's zone decides: 21:30 UTC on Tuesday is 06:30 on Wednesday in Tokyo.
    ("UTC time before opening in Tokyo", datetime(2026, 11, 24, 21, 30, tzinfo=UTC), 0,
     "hours-not-allowed", "Staffroom is open 07:00–21:00 on school days; it is 06:30 now.",
     "10-hours.toml:5 session.allowed_hours"),
]


@pytest.mark.parametrize("now,active,code,reason,rule", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_session_start(teacher: ResolvedPolicy, now: datetime, active: int, code: str,
                       reason: str, rule: str) -> None:
    rule = rule.replace("default.toml:40", f"default.toml:"
                        f"{teacher.provenance['session.max_concurrent'][1]}")
    d = decide_session_start(teacher, now=now, active_sessions=active, tz=JST)
    assert (d.allowed, d.code, d.reason, d.rule) == (code == "ok", code, reason, rule)


def test_concurrent_limit_from_a_user_file(policy_dir: Path,
                                           add_policy: Callable[[str, str], Path]) -> None:
    add_policy("20-two.toml", TWO)
    two = load_policies(policy_dir).resolve("t.two", "teacher", "kita-es")
    assert decide_session_start(two, now=at(25, 23), active_sessions=1).allowed
    d = decide_session_start(two, now=at(25, 23), active_sessions=2)
    assert d.reason == ("You already have 2 sessions open and Staffroom allows 2 sessions at a "
                        "time: close one first.")
    assert d.rule == "20-two.toml:5 session.max_concurrent"


def test_default_policy_is_open_every_day(policy_dir: Path,
                                          add_policy: Callable[[str, str], Path]) -> None:
    add_policy("10-weekend.toml", '[match]\nroles = ["cio"]\n[session]\n'
               'allowed_days = ["sat", "sun"]\n')
    policies = load_policies(policy_dir)
    assert decide_session_start(policies.resolve("t", "teacher", None), now=at(25, 3),
                                active_sessions=0).allowed
    d = decide_session_start(policies.resolve("c", "cio", None), now=at(25, 3),
                             active_sessions=0)
    assert d.reason == "Staffroom is open on Saturday, Sunday; today is Wednesday."


def test_a_naive_time_is_a_programming_error(teacher: ResolvedPolicy) -> None:
    with pytest.raises(ValueError, match="aware"):
        decide_session_start(teacher, now=datetime(2026, 11, 25, 10), active_sessions=0)


def test_explain_why_refused_at_22_10(teacher: ResolvedPolicy) -> None:
    lines = explain(teacher, now=at(25, 22, 10))
    assert lines[:3] == [
        "Policy files applied: default.toml, 10-hours.toml",
        "At 2026-11-25 22:10 (Wednesday): REFUSED — Staffroom is open 07:00–21:00 on school "
        "days; it is 22:10 now.",
        "  rule: 10-hours.toml:5 session.allowed_hours",
    ]
    assert "  session.allowed_days set by 10-hours.toml:6" in lines
    assert any(line.startswith("Second factor: password (default.toml:") for line in lines)


def test_explain_names_the_display_settings_and_their_files(
        policy_dir: Path, add_policy: Callable[[str, str], Path]) -> None:
    """A metered school that caps frames: explain says so, and which file did."""
    add_policy("10-metered.toml", '[match]\nschools = ["yama-es"]\n\n[display]\n'
                                  'quality = "lossy"\nmax_frame_rate = 15\n')
    policies = load_policies(policy_dir)
    quality, rate = default_line("quality ="), default_line("max_frame_rate =")
    assert f"Display: build-to-lossless, at most 30 frames a second (default.toml:{quality} " \
        f"display.quality; default.toml:{rate} display.max_frame_rate)" in \
        explain(policies.resolve("t.kita", "teacher", "kita-es"), now=at(25, 10))
    assert "Display: lossy, at most 15 frames a second (10-metered.toml:5 display.quality; " \
        "10-metered.toml:6 display.max_frame_rate)" in \
        explain(policies.resolve("t.yama", "teacher", "yama-es"), now=at(25, 10))


def test_explain_allowed_and_with_posture(teacher: ResolvedPolicy) -> None:
    from gateway.wire.posture import AntivirusState, PostureReport

    now = at(25, 10)
    report = PostureReport(os="linux", os_version="Debian 12", hostname="home",
                           antivirus=(AntivirusState("ClamAV", True, None, now - timedelta(days=9),
                                                     "27000", "clamav"),),
                           collected_at=now)
    lines = explain(teacher, now=now, posture=report)
    assert lines[1] == "At 2026-11-25 10:00 (Wednesday): a session may start."
    assert any("Posture" in line and "REFUSED" in line for line in lines), lines


@settings(max_examples=200, deadline=None)
@given(when=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31),
                         timezones=st.just(JST)),
       active=st.integers(0, 3))
def test_decision_matches_the_rules_at_any_time(policy_dir_once: ResolvedPolicy,
                                                when: datetime, active: int) -> None:
    d = decide_session_start(policy_dir_once, now=when, active_sessions=active)
    expected = (when.date() != date(2027, 1, 4) and when.weekday() < 5
                and 7 <= when.hour < 21 and active < 1)
    assert d.allowed is expected
    assert bool(d.reason) is not expected and bool(d.rule) is not expected


@pytest.fixture(scope="module")
def policy_dir_once(tmp_path_factory: pytest.TempPathFactory) -> ResolvedPolicy:
    folder = Path(shutil.copytree(SHIPPED_POLICIES, tmp_path_factory.mktemp("p") / "p"))
    (folder / "10-hours.toml").write_text(HOURS, encoding="utf-8")
    return load_policies(folder).resolve("t.sato", "teacher", "kita-es")
