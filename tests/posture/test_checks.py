from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.posture import collect_posture, current_os
from agent.posture.checks import Check, checks_to_json, format_checks, posture_checks
from agent.posture.clamav import running_daemons
from gateway.policy.posture import PosturePolicy, decide_posture
from gateway.wire.posture import PostureReport
from tests.posture.helpers import NOW, av, report, wait_for


def test_all_green_for_fresh_clamav() -> None:
    checks = posture_checks(report(av(updater_running=True)), NOW)
    assert [c.name for c in checks] == ["Operating system", "Antivirus", "Real-time protection",
                                        "Antivirus definitions"]
    assert all(c.ok and c.fix == "" for c in checks)


def test_stale_definitions_say_how_to_fix() -> None:
    checks = posture_checks(report(av(age=timedelta(days=9))), NOW)
    bad = [c for c in checks if not c.ok]
    assert len(bad) == 1 and bad[0].code == "definitions-stale"
    assert bad[0].fix == ("Your antivirus definitions are 9 days old: run freshclam "
                          "(sudo freshclam) and try again.")


def test_thresholds_come_from_the_policy() -> None:
    r = report(av(age=timedelta(days=5)))
    assert not all(c.ok for c in posture_checks(r, NOW))
    assert all(c.ok for c in posture_checks(r, NOW, PosturePolicy(max_definitions_age_days=7)))


def test_format_is_one_aligned_line_per_check() -> None:
    checks = posture_checks(report(av(age=timedelta(days=9), updater_running=False)), NOW)
    text = format_checks(checks)
    lines = text.splitlines()
    assert len(lines) == len(checks)
    assert [line[0] for line in lines] == ["✔", "✔", "✔", "✘"]
    starts = {line.index(c.detail) for line, c in zip(lines, checks, strict=True)}
    assert len(starts) == 1  # details line up in one column
    assert "its updater is not running" in lines[1]
    assert lines[3].endswith("— Your antivirus definitions are 9 days old: run freshclam "
                             "(sudo freshclam) and try again.")
    assert format_checks([]) == ""


def test_json_form() -> None:
    checks = posture_checks(report(), NOW)
    data = json.loads(json.dumps(checks_to_json(checks)))
    assert data["ok"] is False
    assert data["checks"][-1] == {
        "name": "Antivirus", "ok": False, "detail": "none found", "code": "antivirus-missing",
        "fix": "No antivirus was found: install ClamAV (apt install clamav-freshclam) and start "
               "freshclam."}
    assert checks_to_json([Check("Key", True, "found")])["ok"] is True


ages = st.none() | st.integers(-5 * 86400, 30 * 86400).map(lambda s: timedelta(seconds=s))
products = st.builds(av, product=st.sampled_from(["ClamAV", "ESET", "Defender"]),
                     enabled=st.booleans(), realtime=st.none() | st.booleans(), age=ages,
                     up_to_date=st.none() | st.booleans())
policies = st.builds(PosturePolicy, antivirus_required=st.booleans(),
                     max_definitions_age_days=st.integers(0, 10),
                     realtime_required=st.booleans(),
                     allowed_os=st.sampled_from([("linux", "windows", "macos"), ("windows",),
                                                 ()]))


@settings(max_examples=300, deadline=None)
@given(st.lists(products, max_size=3), policies, st.sampled_from(["linux", "windows", "macos"]))
def test_agent_checks_agree_with_the_gateway(prods: list, policy: PosturePolicy,
                                             os_name: str) -> None:
    r = report(*prods, os=os_name)
    checks = posture_checks(r, NOW, policy)
    decision = decide_posture(PostureReport.from_json(r.to_json()), policy, NOW)
    assert all(c.ok for c in checks) is decision.allowed
    if not decision.allowed:
        first = next(c for c in checks if not c.ok)
        assert (first.code, first.fix) == (decision.code, decision.reason)


def test_collect_posture_fresh_and_stale(clamav_defs) -> None:
    now = datetime.now(UTC)
    fresh = collect_posture(now, os_name="linux", clamav_config=clamav_defs(age_days=0.5))
    assert fresh.os == "linux" and fresh.hostname and fresh.collected_at == now
    assert decide_posture(PostureReport.from_json(fresh.to_json()), PosturePolicy(), now).allowed
    stale = collect_posture(now, os_name="linux", clamav_config=clamav_defs(age_days=9))
    decision = decide_posture(PostureReport.from_json(stale.to_json()), PosturePolicy(), now)
    assert decision.code == "definitions-stale" and "9 days old" in decision.reason


def test_current_os_here() -> None:
    assert current_os() == "linux"


def test_running_freshclam_shows_in_the_checks(freshclam_daemon) -> None:
    config, proc = freshclam_daemon
    assert wait_for(lambda: proc.pid in running_daemons().get("freshclam", ()))
    now = datetime.now(UTC)
    r = collect_posture(now, os_name="linux", clamav_config=config)
    (state,) = r.antivirus
    assert state.updater_running is True
    antivirus = next(c for c in posture_checks(r, now) if c.name == "Antivirus")
    assert antivirus.ok and "not running" not in antivirus.detail
