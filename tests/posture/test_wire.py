from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.wire.login import canonical_json
from gateway.wire.posture import (
    AV_STATES,
    MAX_PRODUCTS,
    MAX_REPORT_BYTES,
    AntivirusState,
    PostureFormatError,
    PosturePolicy,
    PostureReport,
    clip,
)
from tests.posture.helpers import NOW, av, report


def good() -> dict[str, Any]:
    return report(av(), av("XProtect", realtime=True, age=None, version=None)).to_json()


def test_round_trip_is_equal_and_byte_stable() -> None:
    r = report(av(realtime=True, updater_running=True), av("ESET", age=None, up_to_date=True))
    again = PostureReport.from_json(r.to_json())
    assert again == r
    assert again.canonical_bytes() == r.canonical_bytes()


def test_canonical_bytes_sorted_no_whitespace_and_match_login_transcript() -> None:
    r = report(av())
    data = r.canonical_bytes()
    assert data == canonical_json(r.to_json())
    assert data == json.dumps(r.to_json(), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()
    assert b"\n" not in data and b'": ' not in data and b'", "' not in data
    assert data.startswith(b'{"antivirus":[{"definitions_time":"2026-11-24T09:00:00Z",')


def test_state_is_written_only_when_named() -> None:
    """Reports without a state (Linux, macOS, older agents) keep their exact bytes."""
    plain = report(av())
    assert "state" not in plain.to_json()["antivirus"][0]
    expired = report(AntivirusState("Norton 360", False, None, None, None, "SecurityCenter2",
                                    True, state="expired"), os="windows")
    assert expired.to_json()["antivirus"][0]["state"] == "expired"
    assert PostureReport.from_json(expired.canonical_bytes()) == expired
    assert not expired.antivirus[0].running


def test_times_are_spelled_once_per_instant() -> None:
    tokyo = timezone(timedelta(hours=9))
    a = report(AntivirusState("A", True, None, datetime(2026, 11, 25, 18, 0, 0, 999, tokyo),
                              None, "s"))
    b = report(AntivirusState("A", True, None, datetime(2026, 11, 25, 9, 0, tzinfo=UTC), None,
                              "s"))
    assert a.canonical_bytes() == b.canonical_bytes()


def test_early_years_keep_four_digits() -> None:
    r = report(AntivirusState("A", True, None, datetime(9, 3, 1, tzinfo=UTC), None, "s"))
    assert r.to_json()["antivirus"][0]["definitions_time"] == "0009-03-01T00:00:00Z"
    assert PostureReport.from_json(r.to_json()) == r


def test_accepts_json_text_and_bytes() -> None:
    text = json.dumps(good())
    assert PostureReport.from_json(text) == PostureReport.from_json(text.encode())


def _set(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    d = good()
    target: Any = d
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "message"), [
    (("os",), "freebsd", "os must be one of"),
    (("os",), None, "os must be a non-empty string"),
    (("hostname",), "x" * 201, "hostname is longer than 200"),
    (("hostname",), "pc\x1b[31m", "control characters"),
    (("os_version",), 12, "os_version must be a string"),
    (("collected_at",), _DELETE, "collected_at is required"),
    (("collected_at",), "2026-11-25T09:00:00", "time zone"),
    (("collected_at",), "yesterday", "ISO 8601"),
    (("collected_at",), "0001-01-01T00:00:00+01:00", "out of range"),
    (("antivirus",), {"product": "x"}, "antivirus must be a list"),
    (("antivirus",), [1], r"antivirus\[\] must be an object"),
    (("antivirus", 0, "enabled"), "yes", "enabled must be true or false"),
    (("antivirus", 0, "enabled"), 1, "enabled must be true or false"),
    (("antivirus", 0, "enabled"), _DELETE, "enabled must be true or false"),
    (("antivirus", 0, "realtime"), 0, "realtime must be true or false"),
    (("antivirus", 0, "product"), "", "product must be a non-empty string"),
    (("antivirus", 0, "definitions_time"), 1700000000, "ISO 8601"),
    (("antivirus", 0, "definitions_time"), "2026-11-25T09:00:00+00:00" + " " * 40, "ISO 8601"),
    (("antivirus", 0, "colour"), "red", "unknown field 'colour'"),
    (("extra",), 1, "unknown field 'extra'"),
])
def test_rejects_malformed_reports(path: tuple[Any, ...], value: Any, message: str) -> None:
    with pytest.raises(PostureFormatError, match=message):
        PostureReport.from_json(_set(path, value))


def test_rejects_too_many_products() -> None:
    d = good()
    d["antivirus"] = [d["antivirus"][0]] * (MAX_PRODUCTS + 1)
    with pytest.raises(PostureFormatError, match="more than 16 products"):
        PostureReport.from_json(d)
    d["antivirus"] = d["antivirus"][:MAX_PRODUCTS]
    assert len(PostureReport.from_json(d).antivirus) == MAX_PRODUCTS


def test_rejects_oversized_and_non_json_text() -> None:
    with pytest.raises(PostureFormatError, match="longer than"):
        PostureReport.from_json(" " * (MAX_REPORT_BYTES + 1))
    with pytest.raises(PostureFormatError, match="not valid JSON"):
        PostureReport.from_json("{")
    with pytest.raises(PostureFormatError, match="not valid JSON"):
        PostureReport.from_json("[" * 5000)
    with pytest.raises(PostureFormatError, match="report must be an object"):
        PostureReport.from_json("[]")


def test_clip_makes_collector_text_fit() -> None:
    assert clip(" Norton\n360\x00 ") == "Norton 360"
    assert len(clip("é" * 500)) == 200


def test_policy_validates_its_numbers() -> None:
    assert PosturePolicy().max_definitions_age_days == 3
    with pytest.raises(ValueError, match="max_definitions_age_days"):
        PosturePolicy(max_definitions_age_days=-1)
    with pytest.raises(ValueError, match="max_definitions_age_days"):
        PosturePolicy(max_definitions_age_days=True)
    with pytest.raises(ValueError, match="allowed_os"):
        PosturePolicy(allowed_os=("linux", "amiga"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["os", "antivirus", "product", "enabled", "collected_at",
                                       "hostname", "realtime", "definitions_time", "x"]),
                      children, max_size=6),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_is_a_report_or_a_clean_error(value: Any) -> None:
    try:
        r = PostureReport.from_json(value)
    except PostureFormatError:
        return
    assert PostureReport.from_json(r.to_json()).canonical_bytes() == r.canonical_bytes()


times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.just(UTC)).map(lambda t: t.replace(microsecond=0))
texts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn",
                                                    "Zs")), min_size=1, max_size=20)
states = st.builds(AntivirusState, product=texts, enabled=st.booleans(),
                   realtime=st.none() | st.booleans(), definitions_time=st.none() | times,
                   definitions_version=st.none() | texts, source=texts,
                   up_to_date=st.none() | st.booleans(), updater_running=st.none() | st.booleans(),
                   state=st.none() | st.sampled_from(AV_STATES))
reports = st.builds(PostureReport, os=st.sampled_from(["linux", "windows", "macos"]),
                    os_version=texts, hostname=texts,
                    antivirus=st.lists(states, max_size=4).map(tuple), collected_at=times)


@settings(max_examples=200, deadline=None)
@given(reports)
def test_every_valid_report_round_trips(r: PostureReport) -> None:
    assert PostureReport.from_json(json.loads(r.canonical_bytes())) == r


def test_helpers_time_is_aware() -> None:
    assert NOW.tzinfo is not None
