from __future__ import annotations

import plistlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.posture.macos import (
    Install,
    collect_macos,
    parse_info_plist,
    parse_install_history,
    parse_xprotect_version,
    rules_installed_at,
    xprotect_state,
)
from gateway.policy.posture import PosturePolicy, decide_posture
from gateway.wire.posture import PostureReport

DATA = Path(__file__).parent / "data"
RULES_2193 = datetime(2024, 5, 21, 22, 5, 13, tzinfo=UTC)


@pytest.mark.parametrize(("text", "version"), [
    ((DATA / "xprotect_version.txt").read_text(), "5287"),
    ("XProtect version: 5287\n", "5287"),
    ("5287\n", "5287"),
    ("Version: 5287\nInstalled: 2025-02-11\n", "5287"),
    ("", None),
    ("xprotect: command not found\n", None),
])
def test_parse_xprotect_version(text: str, version: str | None) -> None:
    assert parse_xprotect_version(text) == version


def test_info_plist_xml_and_binary() -> None:
    xml = (DATA / "xprotect_Info.plist").read_bytes()
    assert parse_info_plist(xml) == "2193"
    binary = plistlib.dumps(plistlib.loads(xml), fmt=plistlib.FMT_BINARY)
    assert parse_info_plist(binary) == "2193"
    assert parse_info_plist(b"not a plist") is None
    assert parse_info_plist(plistlib.dumps({"CFBundleName": "XProtect"})) is None
    assert parse_info_plist(plistlib.dumps(["list"])) is None


def test_install_history_keeps_xprotect_entries() -> None:
    history = parse_install_history((DATA / "install_history.json").read_text())
    assert [(i.name, i.version) for i in history] == [
        ("XProtectPlistConfigData", "2192"), ("XProtectPayloads", "130"),
        ("XProtectPlistConfigData", "2193")]
    assert rules_installed_at(history, "2193") == RULES_2193
    assert rules_installed_at(history, "2192") == datetime(2024, 4, 17, 3, 41, 27, tzinfo=UTC)
    # A version installed over iCloud (no entry): the latest rules install is the best date.
    assert rules_installed_at(history, "5287") == RULES_2193
    assert rules_installed_at((), "2193") is None


@pytest.mark.parametrize("text", ["", "{", "[]", '{"SPInstallHistoryDataType": 3}',
                                  '{"SPInstallHistoryDataType": [1, {"_name": "XProtectX"}]}'])
def test_install_history_tolerates_junk(text: str) -> None:
    assert parse_install_history(text) == ()


def test_xprotect_state_and_decision() -> None:
    (state,) = xprotect_state("2193", RULES_2193, "xprotect version")
    assert state.enabled and state.realtime and state.definitions_version == "2193"
    report = PostureReport(os="macos", os_version="14.5", hostname="mac", antivirus=(state,),
                           collected_at=RULES_2193)
    policy = PosturePolicy()
    assert decide_posture(report, policy, RULES_2193 + timedelta(days=2)).allowed
    stale = decide_posture(report, policy, RULES_2193 + timedelta(days=12))
    assert stale.code == "definitions-stale" and "Software Update" in stale.reason
    assert xprotect_state(None, None, "none") == ()


def test_missing_xprotect_is_missing_antivirus() -> None:
    report = PostureReport(os="macos", os_version="14.5", hostname="mac",
                           antivirus=xprotect_state(None, None, ""), collected_at=RULES_2193)
    assert decide_posture(report, PosturePolicy(), RULES_2193).code == "antivirus-missing"


def test_install_entries_are_values() -> None:
    assert Install("XProtectPayloads", "130", RULES_2193) == Install(
        "XProtectPayloads", "130", RULES_2193)


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the non-macOS refusal")
def test_collect_runs_only_on_macos() -> None:
    with pytest.raises(OSError, match="only on macOS"):
        collect_macos()
