from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.posture.windows import (
    CollectorError,
    WindowsFormatError,
    antivirus_states,
    collect_windows,
    decode_product_state,
    parse_defender_status,
    parse_ps_date,
    parse_security_center,
    run_powershell,
)
from gateway.policy.posture import PosturePolicy, decide_posture
from gateway.wire.posture import AV_STATES, PostureFormatError, PostureReport, assess_posture
from gateway.wire.posture import PosturePolicy as WirePolicy

DATA = Path(__file__).parent / "data"
SIGNATURES = datetime(2024, 5, 23, 10, 29, 5, tzinfo=UTC)  # 1716460145000 ms


def data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def _table() -> list[list[str]]:
    lines = (DATA / "product_states.csv").read_text(encoding="utf-8").splitlines()
    return [line.split(",", 6) for line in lines if line and not line.startswith("#")]


STATE_TABLE = _table()
DEFINITIONS = {"current": True, "outdated": False, "unknown": None}


def test_state_table_covers_the_field_values() -> None:
    values = {int(row[0], 16) for row in STATE_TABLE}
    assert {0x041000, 0x042000, 0x043000, 0x051000, 0x053000, 0x054000, 0x061100,
            0x060100, 0x0} <= values
    assert all(row[5] in {"field", "ipa", "doc", "edge"} for row in STATE_TABLE)


@pytest.mark.parametrize("row", STATE_TABLE, ids=[r[0] for r in STATE_TABLE])
def test_decode_product_state(row: list[str]) -> None:
    value, state, microsoft, definitions, _passes, _source, _what = row
    decoded = decode_product_state(int(value, 16))
    assert decoded.state == state
    assert decoded.microsoft is (microsoft == "yes")
    assert decoded.up_to_date is DEFINITIONS[definitions]
    assert decoded.enabled is (state == "on")


@pytest.mark.parametrize("row", STATE_TABLE, ids=[r[0] for r in STATE_TABLE])
def test_product_state_through_the_gateway_decision(row: list[str]) -> None:
    """The default policy allows exactly the rows marked to pass; the teacher's sentence names
    the state of a product that is not on."""
    value, state, _microsoft, _definitions, passes, _source, _what = row
    item = {"displayName": "Some Antivirus", "productState": int(value, 16)}
    states = antivirus_states(parse_security_center(json.dumps(item)), None)
    report = PostureReport(os="windows", os_version="10.0.22631", hostname="TEACHER-PC",
                           antivirus=states, collected_at=SIGNATURES)
    parsed = PostureReport.from_json(report.to_json())
    decision = decide_posture(parsed, PosturePolicy(), SIGNATURES)
    assert decision.allowed is (passes == "yes")
    if state in {"snoozed", "expired", "off", "unknown"}:
        assert not decision.allowed
        finding = next(f for f in assess_posture(parsed, WirePolicy(), SIGNATURES)
                       if f.check == "antivirus")
        assert finding.detail == f"Some Antivirus: {state}"
        assert finding.fix.endswith(".") and finding.fix.count(". ") == 0


@pytest.mark.parametrize(("name", "state", "words"), [
    ("wsc_expired_ps51.json", "expired", "Norton 360 has expired (its licence or subscription "
     "ran out): renew it, or uninstall it so that Microsoft Defender turns itself on"),
    ("wsc_snoozed_ps51.json", "snoozed", "Trend Micro Antivirus+ is snoozed (paused): turn it "
     "back on in Windows Security"),
])
def test_captured_expired_and_snoozed_products_are_refused(name: str, state: str,
                                                           words: str) -> None:
    (p,) = parse_security_center(data(name))
    assert p.state == state and not p.enabled
    report = PostureReport(os="windows", os_version="10.0.22631", hostname="TEACHER-PC",
                           antivirus=antivirus_states((p,), None), collected_at=SIGNATURES)
    decision = decide_posture(PostureReport.from_json(report.to_json()), PosturePolicy(),
                              SIGNATURES)
    assert decision.code == "antivirus-disabled" and words in decision.reason


def test_enabled_flag_cannot_override_an_expired_state() -> None:
    """A report claiming enabled with state "expired" (a forged or buggy agent) still fails."""
    forged = {"os": "windows", "os_version": "10", "hostname": "PC",
              "collected_at": "2024-05-23T10:29:05Z",
              "antivirus": [{"product": "X", "enabled": True, "source": "SecurityCenter2",
                             "up_to_date": True, "state": "expired"}]}
    decision = decide_posture(PostureReport.from_json(forged), PosturePolicy(), SIGNATURES)
    assert decision.code == "antivirus-disabled"
    with pytest.raises(PostureFormatError, match="state must be one of"):
        PostureReport.from_json(forged | {"antivirus": [forged["antivirus"][0] | {"state": "ON"}]})


def test_decode_product_state_rejects_out_of_range() -> None:
    with pytest.raises(WindowsFormatError):
        decode_product_state(0x1000000)
    with pytest.raises(WindowsFormatError):
        decode_product_state(-1)


def test_security_center_single_product_ps51() -> None:
    (p,) = parse_security_center(data("wsc_defender_ps51.json"))
    assert (p.name, p.enabled, p.up_to_date, p.defender) == ("Windows Defender", True, True, True)
    assert p.state == "on"
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
    with pytest.raises(CollectorError, match="only on Windows"):
        run_powershell("Get-Date")


def test_no_powershell_gives_unknown_which_the_default_policy_refuses(tmp_path: Path) -> None:
    """A PC without PowerShell (or with it blocked): both queries fail to start."""
    missing = str(tmp_path / "no-such-powershell.exe")
    states = collect_windows(lambda cmd: run_powershell(cmd, exe=missing))
    (state,) = states
    assert state.state == "unknown" and not state.enabled and not state.running
    assert "PowerShell could not start" in state.source
    report = PostureReport(os="windows", os_version="10.0.20348", hostname="SERVER",
                           antivirus=states, collected_at=SIGNATURES)
    decision = decide_posture(PostureReport.from_json(report.to_json()), PosturePolicy(),
                              SIGNATURES)
    assert decision.code == "antivirus-unknown"
    assert decision.reason == (
        "This computer could not tell Staffroom whether Windows Security Center is running: "
        "restart the computer and run `staffroom-agent check`; if it still says so, ask your "
        "IT lead.")


def _fake_powershell(tmp_path: Path, body: str) -> str:
    """A real program in PowerShell's place (a shell script taking the same arguments)."""
    exe = tmp_path / "powershell"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    return str(exe)


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script stands in for PowerShell")
def test_timeout_gives_unknown(tmp_path: Path) -> None:
    exe = _fake_powershell(tmp_path, "exec sleep 5")
    (state,) = collect_windows(lambda cmd: run_powershell(cmd, exe=exe, timeout=0.3))
    assert state.state == "unknown"
    assert "PowerShell did not answer within 0.3 s" in state.source


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script stands in for PowerShell")
def test_windows_server_without_security_center_uses_defender(tmp_path: Path) -> None:
    """Windows Server has no root/SecurityCenter2: Get-CimInstance fails with "Invalid
    namespace" and a non-zero exit; Defender's own status still describes the PC."""
    mp = DATA / "mpstatus_ps51.json"
    exe = _fake_powershell(tmp_path, 'case "$*" in *SecurityCenter2*) echo "Get-CimInstance : '
                           'Invalid namespace" >&2; exit 1;; *) cat ' + f"'{mp}'" + ';; esac')
    (state,) = collect_windows(lambda cmd: run_powershell(cmd, exe=exe))
    assert state.product == "Microsoft Defender Antivirus" and state.running
    assert state.definitions_time == SIGNATURES


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script stands in for PowerShell")
def test_server_with_neither_query_answering_is_unknown(tmp_path: Path) -> None:
    exe = _fake_powershell(tmp_path, 'echo "Get-CimInstance : Invalid namespace" >&2; exit 1')
    (state,) = collect_windows(lambda cmd: run_powershell(cmd, exe=exe))
    assert state.state == "unknown"
    assert "Security Center: PowerShell failed: Get-CimInstance : Invalid namespace" in \
        state.source


def test_defender_status_decides_freshness_over_the_wsc_byte() -> None:
    """Security Center says Defender's definitions are out of date (0x061110) but Defender's own
    status has them from today: Defender's word decides."""
    item = json.loads(data("wsc_defender_ps51.json")) | {"productState": 0x061110}
    wsc = parse_security_center(json.dumps(item))
    assert wsc[0].up_to_date is False
    (state,) = antivirus_states(wsc, parse_defender_status(data("mpstatus_ps51.json")))
    assert state.up_to_date is True and state.definitions_time == SIGNATURES
    report = PostureReport(os="windows", os_version="10", hostname="PC", antivirus=(state,),
                           collected_at=SIGNATURES)
    assert decide_posture(report, PosturePolicy(), SIGNATURES + timedelta(days=1)).allowed


def test_defender_signature_age_dates_definitions_when_no_date() -> None:
    item = json.loads(data("mpstatus_ps7.json"))
    item.pop("AntivirusSignatureLastUpdated")
    item["AntivirusSignatureAge"] = 9
    status = parse_defender_status(json.dumps(item))
    assert status is not None and status.signature_age_days == 9
    (state,) = antivirus_states((), status, now=SIGNATURES)
    assert state.definitions_time == SIGNATURES - timedelta(days=9)
    report = PostureReport(os="windows", os_version="10", hostname="PC", antivirus=(state,),
                           collected_at=SIGNATURES)
    decision = decide_posture(report, PosturePolicy(), SIGNATURES)
    assert decision.code == "definitions-stale" and "9 days old" in decision.reason


def test_defender_saying_antivirus_disabled_turns_it_off() -> None:
    item = json.loads(data("mpstatus_ps51.json")) | {"AntivirusEnabled": False}
    wsc = parse_security_center(data("wsc_defender_ps51.json"))
    (state,) = antivirus_states(wsc, parse_defender_status(json.dumps(item)))
    assert state.state == "off" and not state.running


@pytest.mark.skipif(sys.platform != "win32", reason="reads this Windows PC's real state")
def test_this_windows_pc_reports_named_states() -> None:
    """On a Windows runner (.github/workflows/windows-agent.yml): the real queries answer, or the
    report says "unknown"; Windows Server has no Security Center, so Defender alone speaks."""
    states = collect_windows()
    assert states
    assert all(s.state in AV_STATES for s in states)
    print([(s.product, s.state, s.source) for s in states])
