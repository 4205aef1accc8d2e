"""Policy as data: the shipped defaults, validation errors with file:line, narrowing and the
session-start decision at its boundaries."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gateway.policy.decide import decide_session_start, explain
from gateway.policy.load import PolicyError, check_dir, load_policies
from gateway.policy.schema import SCHEMA

SHIPPED = Path(__file__).resolve().parents[2] / "policies"
JST = timezone(timedelta(hours=9))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(SHIPPED, tmp_path / "policies")
    return tmp_path / "policies"


def test_default_lists_every_key_of_the_schema() -> None:
    files = load_policies(SHIPPED).files
    default = files[0]
    assert default.name == "default.toml"
    assert {s: set(k) for s, k in default.values.items()} == {s: set(k)
                                                               for s, k in SCHEMA.items()}


@pytest.mark.parametrize("text,expected", [
    ("[redirection]\nclipbord = \"off\"\n", "x.toml:5: redirection.clipbord: unknown key "
     "'clipbord' in [redirection]; allowed keys: clipboard, clipboard_max_bytes"),
    ("[redirection]\nclipboard = \"sideways\"\n", "x.toml:5: redirection.clipboard: expected "
     "one of 'off', 'to-remote', 'to-local', 'both', got 'sideways'"),
    ("[redirection]\nprinting = \"no\"\n", "x.toml:5: redirection.printing: expected true or "
     "false"),
    ("[posture]\nmax_definitions_age_days = 400\n", "x.toml:5: posture."
     "max_definitions_age_days: expected an integer 0..365, got 400"),
    ("[session]\nidle_timeout = \"15 minutes\"\n", "x.toml:5: session.idle_timeout: expected "
     "a duration"),
    ("[session]\nallowed_hours = \"21:00-07:00\"\n", "x.toml:5: session.allowed_hours: the end"),
    ("[watermark]\ntemplate = \"{user} {password}\"\n", "x.toml:5: watermark.template: unknown "
     "field {password}"),
    ("[sesion]\nidle_timeout = \"1m\"\n", "x.toml:4: [sesion]: unknown section; allowed "
     "sections: redirection"),
    ("[session]\nidle_timeout = \n", "x.toml: Invalid value (at line 5"),
])
def test_errors_name_file_line_and_what_is_allowed(folder: Path, text: str,
                                                   expected: str) -> None:
    (folder / "x.toml").write_text(f"# a school's policy\n[match]\nschools = [\"s1\"]\n{text}")
    with pytest.raises(PolicyError) as e:
        load_policies(folder)
    assert str(e.value).startswith(expected), str(e.value)
    assert check_dir(folder) == [str(e.value)]


def test_narrowing_by_school_role_user_and_precedence(folder: Path) -> None:
    (folder / "10-kita.toml").write_text(
        '[match]\nschools = ["kita"]\n\n[redirection]\nclipboard = "to-remote"\n')
    (folder / "20-cio-totp.toml").write_text(
        '[match]\nroles = ["cio"]\nschools = ["kita"]\n\n[auth]\nsecond_factor = "both"\n'
        '[redirection]\nclipboard = "both"\n')
    (folder / "30-one.toml").write_text(
        '[match]\nusers = ["t.mori"]\n\n[session]\nmax_concurrent = 2\n')
    ps = load_policies(folder)
    teacher = ps.resolve("t.sato", "teacher", "kita")
    assert teacher.policy.redirection.clipboard == "to-remote"
    assert teacher.provenance["redirection.clipboard"] == ("10-kita.toml", 5)
    assert teacher.policy.auth.second_factor == "password"
    cio = ps.resolve("cio.kita", "cio", "kita")
    assert cio.policy.auth.second_factor == "both" and cio.policy.redirection.clipboard == "both"
    assert ps.resolve("t.sato", "teacher", "minami").policy.redirection.clipboard == "off"
    assert ps.resolve("t.mori", "teacher", "minami").policy.session.max_concurrent == 2


def test_a_narrowing_file_needs_match(folder: Path) -> None:
    (folder / "x.toml").write_text('[auth]\nsecond_factor = "totp"\n')
    with pytest.raises(PolicyError, match="needs a \\[match\\] table"):
        load_policies(folder)


@pytest.fixture
def school_hours(folder: Path):  # type: ignore[no-untyped-def]
    (folder / "hours.toml").write_text(
        '[match]\nroles = ["teacher"]\n\n[session]\nallowed_hours = "07:00-21:00"\n'
        'allowed_days = ["mon", "tue", "wed", "thu", "fri"]\n'
        'calendar_exceptions = ["2027-01-04"]\n')
    return load_policies(folder).resolve("t", "teacher", "s")


@pytest.mark.parametrize("when,allowed,code", [
    (datetime(2026, 11, 25, 6, 59, tzinfo=JST), False, "hours-not-allowed"),
    (datetime(2026, 11, 25, 7, 0, tzinfo=JST), True, "ok"),
    (datetime(2026, 11, 25, 20, 59, tzinfo=JST), True, "ok"),
    (datetime(2026, 11, 25, 21, 0, tzinfo=JST), False, "hours-not-allowed"),
    (datetime(2026, 11, 28, 10, 0, tzinfo=JST), False, "day-not-allowed"),  # a Saturday
    (datetime(2027, 1, 4, 10, 0, tzinfo=JST), False, "closed-date"),
])
def test_session_start_boundaries(school_hours, when: datetime, allowed: bool,  # type: ignore
                                  code: str) -> None:
    d = decide_session_start(school_hours, now=when, active_sessions=0)
    assert (d.allowed, d.code) == (allowed, code)
    if not allowed:
        assert d.rule.startswith("hours.toml:")


def test_refused_at_22_10_explains_why(school_hours) -> None:  # type: ignore[no-untyped-def]
    lines = explain(school_hours, now=datetime(2026, 11, 25, 22, 10, tzinfo=JST))
    text = "\n".join(lines)
    assert "REFUSED — Staffroom is open 07:00–21:00; it is 22:10 now." in text
    assert "rule: hours.toml:5 session.allowed_hours" in text


def test_concurrent_limit(school_hours) -> None:  # type: ignore[no-untyped-def]
    d = decide_session_start(school_hours, now=datetime(2026, 11, 25, 10, tzinfo=JST),
                             active_sessions=1)
    assert d.code == "too-many-sessions" and "default.toml" in d.rule
