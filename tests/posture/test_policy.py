from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.policy.posture import PostureDecision, PosturePolicy, decide_posture
from gateway.wire.posture import PostureReport
from tests.posture.helpers import NOW, av, report

D, H, S = timedelta(days=1), timedelta(hours=1), timedelta(seconds=1)
DEFAULT = PosturePolicy()
STRICT = PosturePolicy(realtime_required=True)


@pytest.mark.parametrize(("name", "r", "policy", "code", "words"), [
    ("fresh clamav", report(av(age=D)), DEFAULT, "ok", ""),
    ("exactly at the limit", report(av(age=3 * D)), DEFAULT, "ok", ""),
    ("one second past the limit", report(av(age=3 * D + S)), DEFAULT, "definitions-stale",
     "Your antivirus definitions are more than 3 days old: run freshclam"),
    ("nine days old on linux", report(av(age=9 * D + 5 * H)), DEFAULT, "definitions-stale",
     "Your antivirus definitions are 9 days old: run freshclam (sudo freshclam) and try again."),
    ("stale on windows", report(av("Windows Defender", age=5 * D), os="windows"), DEFAULT,
     "definitions-stale", "run Windows Update (or Update-MpSignature in PowerShell)"),
    ("stale on macos", report(av("XProtect", age=40 * D), os="macos"), DEFAULT,
     "definitions-stale", "40 days old: install the latest updates in System Settings"),
    ("limit zero allows same day", report(av(age=0 * D)),
     PosturePolicy(max_definitions_age_days=0), "ok", ""),
    ("limit zero refuses a minute", report(av(age=timedelta(minutes=1))),
     PosturePolicy(max_definitions_age_days=0), "definitions-stale", "more than 0 days old"),
    ("small clock skew counts as new", report(av(age=-23 * H)), DEFAULT, "ok", ""),
    ("skew exactly at tolerance", report(av(age=-24 * H)), DEFAULT, "ok", ""),
    ("skew beyond tolerance", report(av(age=-24 * H - S)), DEFAULT, "clock-skew",
     "dated 26 Nov 2026, in the future: check this computer's date and time"),
    ("far future never counts as fresh", report(av(age=-3650 * D)), DEFAULT, "clock-skew", ""),
    ("no antivirus on linux", report(), DEFAULT, "antivirus-missing",
     "No antivirus was found: install ClamAV (apt install clamav-freshclam) and start freshclam."),
    ("no antivirus on windows", report(os="windows"), DEFAULT, "antivirus-missing",
     "turn on Microsoft Defender Antivirus"),
    ("no antivirus but none required", report(), PosturePolicy(antivirus_required=False), "ok",
     ""),
    ("antivirus off", report(av("Windows Defender", enabled=False), os="windows"), DEFAULT,
     "antivirus-disabled", "Windows Defender is turned off: turn it on in Windows Security"),
    ("clamav without database", report(av(enabled=False, age=None)), DEFAULT,
     "antivirus-disabled", "ClamAV 1.4.6 has no virus definitions yet: run freshclam"),
    ("one of two enabled is enough", report(av("Defender", enabled=False),
                                            av("ESET", age=None, up_to_date=True), os="windows"),
     DEFAULT, "ok", ""),
    ("realtime off but not required", report(av(realtime=False)), DEFAULT, "ok", ""),
    ("realtime off and required", report(av(realtime=False)), STRICT, "realtime-off",
     "Real-time scanning is off: start clamd and clamonacc"),
    ("realtime unknown and required", report(av("ESET", age=None, up_to_date=True), os="windows"),
     STRICT, "realtime-off", "Real-time protection is off: turn it on in Windows Security"),
    ("realtime on and required", report(av(realtime=True)), STRICT, "ok", ""),
    ("the realtime product must be the fresh one",
     report(av("A", realtime=True, age=9 * D), av("B", realtime=False, age=D)), STRICT,
     "definitions-stale", "9 days old"),
    ("any fresh product passes", report(av("A", age=9 * D), av("B", age=D)), DEFAULT, "ok", ""),
    ("newest stale product is reported", report(av("A", age=20 * D), av("B", age=6 * D)),
     DEFAULT, "definitions-stale", "6 days old"),
    ("unknown age", report(av("ESET", age=None), os="windows"), DEFAULT, "definitions-unknown",
     "ESET does not say how old its definitions are: run Windows Update"),
    ("product says up to date", report(av("ESET", age=None, up_to_date=True), os="windows"),
     DEFAULT, "ok", ""),
    ("product says out of date", report(av("ESET", age=None, up_to_date=False), os="windows"),
     DEFAULT, "definitions-stale", "ESET says its definitions are out of date"),
    ("a date beats the product's own flag", report(av(age=9 * D, up_to_date=True)), DEFAULT,
     "definitions-stale", "9 days old"),
    ("stale beats unknown in the message", report(av("A", age=None), av("B", age=9 * D)),
     DEFAULT, "definitions-stale", "9 days old"),
    ("os not allowed", report(av(), os="windows"), PosturePolicy(allowed_os=("linux", "macos")),
     "os-not-allowed", "Windows computers may not be used to connect: use a Linux or macOS "
                       "computer."),
    ("os checked before antivirus", report(os="windows"), PosturePolicy(allowed_os=("linux",)),
     "os-not-allowed", "use a Linux computer."),
    ("no os allowed", report(av()), PosturePolicy(allowed_os=()), "os-not-allowed",
     "ask your IT lead"),
])
def test_decide_posture(name: str, r: PostureReport, policy: PosturePolicy, code: str,
                        words: str) -> None:
    decision = decide_posture(r, policy, NOW)
    assert decision.code == code, name
    assert decision.allowed is (code == "ok")
    assert words in decision.reason
    if decision.allowed:
        assert decision.reason == ""
    else:  # one sentence for the teacher
        assert decision.reason.endswith(".") and decision.reason.count(". ") == 0


def test_decision_uses_the_gateway_clock_not_the_report() -> None:
    r = report(av(age=D))
    assert decide_posture(r, DEFAULT, NOW).allowed
    assert decide_posture(r, DEFAULT, NOW + 3 * D).code == "definitions-stale"


def test_decision_is_a_frozen_value() -> None:
    d = decide_posture(report(av()), DEFAULT, NOW)
    assert d == PostureDecision(True, "ok", "")
    with pytest.raises(AttributeError):
        d.allowed = False  # type: ignore[misc]
