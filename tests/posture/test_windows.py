from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.posture.windows import (
    WindowsFormatError,
    antivirus_states,
    decode_product_state,
    parse_defender_status,
    parse_ps_date,
    parse_security_center,
    run_powershell,
)
from gateway.policy.posture import PosturePolicy, decide_posture
from gateway.wire.posture import PostureReport

DATA = Path(__file__).parent / "data"
SIGNATURES = datetime(2024, 5, 23, 10, 29, 5, tzinfo=UTC)  # 1716460145000 ms


def data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(("state", "enabled", "up_to_date"), [
    (397568, True, True),  # 0x061100 Defender on, current (the common value)
    (397584, True, False),  # 0x061110 on, out of date
    (393472, False, True),  # 0x060100 Defender off (another product took over)
    (266240, True, True),  # 0x041000 third-party on, current
    (266256, True, False),  # 0x041010
    (262144, False, True),  # 0x040000 off
    (262160, False, False),  # 0x040010
    (397328, True, False),  # 0x061010 on, out of date
    (266496, True, True),  # 0x041100 on but snoozed: still counted on
    (262400, False, True),  # 0x040100 off/expired
    (270336, False, True),  # 0x042000 scanner byte 0x20 has no 0x10 bit: not on
])
def test_decode_product_state(state: int, enabled: bool, up_to_date: bool) -> None:
    assert decode_product_state(state) == (enabled, up_to_date)


def test_decode_product_state_rejects_out_of_range() -> None:
    with pytest.raises(WindowsFormatError):
        decode_product_state(0x1000000)
    with pytest.raises(WindowsFormatError):
        decode_product_state(-1)


def test_security_center_single_product_ps51() -> None:
    (p,) = parse_security_center(data("wsc_defender_ps51.json"))
    assert (p.name, p.enabled, p.up_to_date, p.defender) == ("Windows Defender", True, True, True)
    assert p.timestamp == datetime(2024, 5, 23, 12, 29, 5, tzinfo=UTC)


def test_security_center_two_products_ps7() -> None:
    defender, eset = parse_security_center(data("wsc_two_products_ps7.json"))
    assert defender.defender and not defender.enabled
    assert (eset.name, eset.enabled, eset.up_to_date, eset.defender) == (
        "ESET Security", True, True, False)


def test_security_center_empty_and_broken_output() -> None:
    assert parse_security_center("") == ()
    assert parse_security_center("\r\n") == ()
    with pytest.raises(WindowsFormatError):
        parse_security_center("Get-CimInstance : Invalid namespace")
    with pytest.raises(WindowsFormatError):
        parse_security_center('{"displayName": "X"}')
    with pytest.raises(WindowsFormatError):
        parse_security_center('{"displayName": "X", "productState": true}')


def test_security_center_unnamed_product_still_reportable() -> None:
    (p,) = parse_security_center('{"displayName": "\\u0007", "productState": 266240}')
    assert p.name == "Unnamed antivirus product"


def test_security_center_keeps_at_most_16_products() -> None:
    one = '{"displayName": "AV", "productState": 266240}'
    assert len(parse_security_center("[" + ",".join([one] * 40) + "]")) == 16


@pytest.mark.parametrize(("value", "expected"), [
    ("/Date(1716460145000)/", SIGNATURES),  # Windows PowerShell 5.1 (JSON text "\/Date(…)\/")
    ("/Date(1716460145000+0900)/", SIGNATURES),  # the offset is display-only; ms are UTC
    ("2024-05-23T19:29:05+09:00", SIGNATURES),  # PowerShell 7
    ("2024-05-23T19:29:05.1234567+09:00", SIGNATURES + timedelta(microseconds=123456)),
    ({"value": "/Date(1716460145000)/", "DisplayHint": 2,
      "DateTime": "Thursday, May 23, 2024 7:29:05 PM"}, SIGNATURES),
    (None, None), ("", None), ("/Date(abc)/", None), (1716460145000, None),
    ("/Date(" + "9" * 15 + ")/", None), ("x" * 100, None),
    ("/Date(-62135596800000)/", None), ("0001-01-01T00:00:00", None),  # DateTime.MinValue
])
def test_parse_ps_date(value: object, expected: datetime | None) -> None:
    assert parse_ps_date(value) == expected


def test_parse_ps_date_naive_iso_is_local_time() -> None:
    parsed = parse_ps_date("2024-05-23T19:29:05")
    assert parsed is not None and parsed.tzinfo is not None
    assert parsed.replace(tzinfo=None) == datetime(2024, 5, 23, 19, 29, 5)


@pytest.mark.parametrize(("name", "realtime"), [("mpstatus_ps51.json", True),
                                                ("mpstatus_ps7.json", False)])
def test_defender_status(name: str, realtime: bool) -> None:
    status = parse_defender_status(data(name))
    assert status is not None
    assert status.antivirus_enabled and status.realtime is realtime
    assert status.signature_time == SIGNATURES
    assert status.signature_version == "1.411.345.0" and status.up_to_date is True


def test_defender_status_missing() -> None:
    assert parse_defender_status("") is None


def test_merged_states_defender_gains_detail() -> None:
    wsc = parse_security_center(data("wsc_defender_ps51.json"))
    (state,) = antivirus_states(wsc, parse_defender_status(data("mpstatus_ps51.json")))
    assert state.product == "Windows Defender" and state.enabled and state.realtime
    assert state.definitions_time == SIGNATURES and state.definitions_version == "1.411.345.0"
    assert state.source == "SecurityCenter2+Get-MpComputerStatus"


def test_merged_states_third_party_carries_only_the_flag() -> None:
    wsc = parse_security_center(data("wsc_two_products_ps7.json"))
    defender, eset = antivirus_states(wsc, parse_defender_status(data("mpstatus_ps7.json")))
    assert not defender.enabled  # Security Center says off: passive behind ESET
    assert eset.enabled and eset.up_to_date and eset.definitions_time is None
    assert eset.realtime is None and eset.source == "SecurityCenter2"


def test_windows_server_has_no_security_center() -> None:
    (state,) = antivirus_states((), parse_defender_status(data("mpstatus_ps51.json")))
    assert state.product == "Microsoft Defender Antivirus" and state.enabled


def test_captured_windows_reports_through_the_gateway_decision() -> None:
    tokyo = timezone(timedelta(hours=9))
    states = antivirus_states(parse_security_center(data("wsc_two_products_ps7.json")),
                              parse_defender_status(data("mpstatus_ps7.json")))
    report = PostureReport(os="windows", os_version="10.0.22631", hostname="TEACHER-PC",
                           antivirus=states, collected_at=SIGNATURES)
    parsed = PostureReport.from_json(report.to_json())
    # ESET's "up to date" flag carries the login even when Defender's own date is old.
    assert decide_posture(parsed, PosturePolicy(), SIGNATURES + timedelta(days=30)).allowed
    strict = PosturePolicy(realtime_required=True)
    assert decide_posture(parsed, strict, datetime(2024, 5, 24, tzinfo=tokyo)).code == \
        "realtime-off"


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows refusal")
def test_powershell_runs_only_on_windows() -> None:
    with pytest.raises(OSError, match="only on Windows"):
        run_powershell("Get-Date")
