"""The schema as data: default.toml and the schema agree key for key, every rule refuses what it
must and parses what it may, and no value makes a rule raise anything but Invalid."""

from __future__ import annotations

import contextlib
import tomllib
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy.schema import SCHEMA, Invalid, describe
from gateway.policy.units import format_duration, parse_duration, parse_size
from tests.fixtures.policy import SHIPPED_POLICIES


def test_default_toml_sets_exactly_the_schema_keys() -> None:
    raw = tomllib.loads((SHIPPED_POLICIES / "default.toml").read_text(encoding="utf-8"))
    assert {s: set(k) for s, k in raw.items()} == {s: set(k) for s, k in SCHEMA.items()}
    for section, keys in raw.items():
        for key, value in keys.items():
            SCHEMA[section][key].check(value)  # every shipped default passes its own rule


def test_every_key_is_described() -> None:
    rows = describe()
    assert len(rows) == sum(len(k) for k in SCHEMA.values())
    assert all(expects and doc for _, expects, doc in rows)


@pytest.mark.parametrize("text,expected", [
    ("45s", timedelta(seconds=45)), ("15m", timedelta(minutes=15)), ("8h", timedelta(hours=8)),
    ("1h30m", timedelta(hours=1, minutes=30)), ("2d", timedelta(days=2)),
    ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "15", "15 m", "1m1h", "15m\n", "１５m", "-5m", "1.5h",
                                  "99999d", "15min"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text,expected", [("2GiB", 2 << 30), ("500MiB", 500 << 20),
                                           ("512 KiB", 512 << 10), ("0B", 0)])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["2GB", "2 gib", "2", "GiB", "-1MiB", "1.5GiB", "2GiB\n"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(text)


ACCEPTED: list[tuple[str, Any, Any]] = [
    ("redirection.clipboard", "to-remote", "to-remote"),
    ("redirection.clipboard_max_bytes", 1024 * 1024, 1024 * 1024),
    ("redirection.clipboard_max_bytes", 0, 0),
    ("posture.allowed_os", ["linux", "linux"], ("linux",)),
    ("posture.allowed_os", [], ()),
    ("session.allowed_hours", "07:00-21:00", (420, 1260)),
    ("session.allowed_hours", "00:00-24:00", (0, 1440)),
    ("session.calendar_exceptions", ["2027-01-04", date(2026, 12, 29)],
     (date(2026, 12, 29), date(2027, 1, 4))),
    ("session.idle_timeout", "4s", timedelta(seconds=4)),
    ("session.reconnect_grace", "0s", timedelta(0)),
    ("watermark.template", "{user} {{literal}} {datetime}", "{user} {{literal}} {datetime}"),
    ("watermark.opacity", 0.5, 0.5),
    ("watermark.opacity", 0.02, 0.02),
    ("display.max_frame_rate", 0, 0),
    ("display.max_frame_rate", 60, 60),
    ("workspace.allowed_hosts", ["grades.school.example", "10.1.2.3:443", "[fd00::1]:8080",
                                 "mail"], None),
    ("workspace.home_quota", "500MiB", 500 << 20),
    ("workspace.session_command", "xterm -title 'Staff room'", None),
    ("keys.valid_until", "school-year-end", "school-year-end"),
    ("keys.valid_until", "365d", 365),
]


@pytest.mark.parametrize("name,value,expected", ACCEPTED)
def test_rule_accepts(name: str, value: Any, expected: Any) -> None:
    section, key = name.split(".")
    parsed = SCHEMA[section][key].check(value)
    assert parsed == (tuple(value) if expected is None and isinstance(value, list) else
                      value if expected is None else expected)


REFUSED: list[tuple[str, Any, str]] = [
    ("redirection.clipboard", "sideways", 'expected one of "off", "to-remote", "to-local", '
     '"both", got \'sideways\''),
    ("redirection.clipboard", True, "got True"),
    ("redirection.clipboard_max_bytes", 1024 * 1024 + 1, "expected an integer 0..1048576 "
     "bytes, got 1048577"),
    ("redirection.clipboard_max_bytes", -1, "got -1"),
    ("redirection.clipboard_max_bytes", "4096", "got '4096'"),
    ("redirection.printing", "no", "expected true or false, got 'no'"),
    ("redirection.audio", 1, "expected true or false, got 1"),
    ("posture.max_definitions_age_days", 366, "expected an integer 0..365, got 366"),
    ("posture.max_definitions_age_days", True, "got True"),
    ("posture.max_definitions_age_days", 3.0, "got 3.0"),
    ("posture.allowed_os", ["linux", "bsd"], "got 'bsd' in the list"),
    ("posture.allowed_os", "linux", "expected a list of"),
    ("session.idle_timeout", "15 minutes", "expected a duration like"),
    ("session.idle_timeout", "0s", "of at least 1s"),
    ("session.idle_timeout", 900, "got 900"),
    ("session.max_duration", "400d", "at most 366 days"),
    ("session.allowed_days", ["mon", "Tue"], "got 'Tue' in the list"),
    ("session.allowed_hours", "21:00-07:00", "ends before it starts"),
    ("session.allowed_hours", "7:00-21:00", 'expected hours like "07:00-21:00"'),
    ("session.allowed_hours", "07:00-24:01", "got '07:00-24:01'"),
    ("session.allowed_hours", "24:00-24:00", "got '24:00-24:00'"),
    ("session.allowed_hours", "09:00-09:00", "ends before it starts"),
    ("session.calendar_exceptions", ["2027-02-30"], "got '2027-02-30' in the list"),
    ("session.calendar_exceptions", [datetime(2027, 1, 4, 9)], "in the list"),
    ("session.calendar_exceptions", "2027-01-04", "expected a list of dates"),
    ("session.max_concurrent", 0, "expected an integer 1..10, got 0"),
    ("session.max_concurrent", 11, "got 11"),
    ("auth.second_factor", "sms", 'expected one of "password", "totp", "both"'),
    ("watermark.template", "{user} {password}", "unknown field {password}; allowed fields: "
     "{user}, {name}, {school}, {datetime}, {session}"),
    ("watermark.template", "{user.__class__}", "unknown field {user.__class__}"),
    ("watermark.template", "{}", "unknown field {}"),
    ("watermark.template", "{user!r}", "plain fields only"),
    ("watermark.template", "{user:>200}", "plain fields only"),
    ("watermark.template", "{user", "expected '}' before end of string"),
    ("watermark.opacity", 0.51, "expected a number 0.02..0.5, got 0.51"),
    ("watermark.opacity", 0.01, "got 0.01"),
    ("watermark.opacity", float("nan"), "got nan"),
    ("display.max_frame_rate", -1, "expected an integer 0..60 frames a second (0: no limit), "
     "got -1"),
    ("display.max_frame_rate", 61, "got 61"),
    ("display.max_frame_rate", 29.5, "got 29.5"),
    ("workspace.session_command", "", "expected a command line"),
    ("workspace.session_command", "xterm -title 'open", "No closing quotation"),
    ("workspace.allowed_hosts", ["grades:0"], "got 'grades:0'"),
    ("workspace.allowed_hosts", ["grades:65536"], "got 'grades:65536'"),
    ("workspace.allowed_hosts", ["http://grades/"], "got 'http://grades/'"),
    ("workspace.allowed_hosts", ["-bad.example"], "got '-bad.example'"),
    ("workspace.allowed_hosts", ["a" * 64 + ".example"], "in the list"),
    ("workspace.allowed_hosts", ["a" * 300], "..."),
    # What a desktop's relays could not take is refused at load, not at a teacher's login.
    ("workspace.allowed_hosts", ["0.0.0.0:80"], "'0.0.0.0:80' is not a single host"),
    ("workspace.allowed_hosts", ["224.0.0.1:80"], "is not a single host"),
    ("workspace.allowed_hosts", ["[::]:443"], "is not a single host"),
    ("workspace.allowed_hosts", ["[ff02::1]"], "is not a single host"),
    ("workspace.allowed_hosts", [f"10.0.0.1:{p}" for p in range(1, 66)],
     "expected at most 64 hosts, got 65"),
    ("workspace.home_quota", "2GB", 'expected a size like "500MiB" or "2GiB", got \'2GB\''),
    ("workspace.home_quota", "2TiB", "up to 1TiB"),
    ("workspace.stop_unattached_after", "30", "expected a duration"),
    ("keys.valid_until", "365", 'expected "school-year-end" or a number of days'),
    ("keys.valid_until", "3651d", "got '3651d'"),
    ("keys.valid_until", 365, "got 365"),
]


@pytest.mark.parametrize("name,value,message", REFUSED)
def test_rule_refuses_saying_what_was_expected(name: str, value: Any, message: str) -> None:
    section, key = name.split(".")
    with pytest.raises(Invalid) as e:
        SCHEMA[section][key].check(value)
    assert message in str(e.value), str(e.value)
    assert len(str(e.value)) < 400  # a huge value is cut in the message


TOML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
    | st.dates() | st.datetimes(),
    lambda inner: st.lists(inner, max_size=4), max_leaves=8,
)


@given(name=st.sampled_from([f"{s}.{k}" for s, keys in SCHEMA.items() for k in keys]),
       value=TOML_VALUES)
def test_any_value_parses_or_is_invalid(name: str, value: Any) -> None:
    section, key = name.split(".")
    with contextlib.suppress(Invalid):
        SCHEMA[section][key].check(value)
