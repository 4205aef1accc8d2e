from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.posture.clamav import (
    DEFAULT_DATABASE_DIR,
    ClamavFormatError,
    collect_clamav,
    database_directory,
    newest_daily,
    parse_build_time,
    parse_clamscan_version,
    parse_cvd_header,
    parse_freshclam_conf,
    running_daemons,
)
from tests.fixtures.clamav import build_time_text, start_freshclam, stop_freshclam, write_cvd
from tests.posture.helpers import wait_for

BUILT = datetime(2026, 11, 25, 9, 15, tzinfo=UTC)
# Debian's clamav-freshclam postinst writes this file (trimmed); options are "Name value".
DEBIAN_CONF = """\
# Automatically created by the clamav-freshclam postinst
# Comments will get lost when you reconfigure the clamav-freshclam package

DatabaseOwner clamav
UpdateLogFile /var/log/clamav/freshclam.log
LogVerbose false
DatabaseDirectory /var/lib/clamav
DNSDatabaseInfo current.cvd.clamav.net
DatabaseMirror db.local.clamav.net
DatabaseMirror database.clamav.net
"""


def test_parse_build_time() -> None:
    assert parse_build_time("25 Nov 2026 09-15 +0000") == BUILT
    assert parse_build_time(build_time_text(BUILT)) == BUILT
    assert parse_build_time("07 Jan 2024 18-05 -0500") == datetime(
        2024, 1, 7, 18, 5, tzinfo=timezone(-timedelta(hours=5)))
    for bad in ("25 Nov 2026 09:15 +0000", "25 Foo 2026 09-15 +0000", "31 Feb 2026 09-15 +0000",
                "", "25 Nov 2026 09-15"):
        with pytest.raises(ClamavFormatError):
            parse_build_time(bad)


def test_parse_real_format_header(tmp_path: Path) -> None:
    path = write_cvd(tmp_path / "daily.cvd", BUILT, version=27832, signatures=2074312)
    header = parse_cvd_header(path.read_bytes()[:512])
    assert (header.build_time, header.version, header.signatures) == (BUILT, 27832, 2074312)
    assert header.functionality_level == 90 and header.builder == "staffroom-tests"
    assert header.stime == int(BUILT.timestamp())
    assert path.read_bytes()[:11] == b"ClamAV-VDB:" and path.read_bytes()[511:512] == b" "


@pytest.mark.skipif(shutil.which("sigtool") is None, reason="sigtool (clamav) not installed")
def test_header_agrees_with_clamav_sigtool(tmp_path: Path) -> None:
    # sigtool parses the header with libclamav; the signature cannot verify (only ClamAV can sign
    # databases), so its exit code is 1, but the fields it prints come from the real parser.
    path = write_cvd(tmp_path / "daily.cvd", BUILT, version=27901, signatures=2075000)
    out = subprocess.run(["sigtool", "--info", str(path)], capture_output=True, text=True,
                         timeout=30, check=False).stdout
    fields = dict(re.findall(r"^([A-Za-z0-9 ]+): (.*)$", out, re.MULTILINE))
    header = parse_cvd_header(path.read_bytes())
    assert fields["Build time"] == "25 Nov 2026 09:15 +0000"
    assert int(fields["Version"]) == header.version == 27901
    assert int(fields["Signatures"]) == header.signatures
    assert int(fields["Functionality level"]) == header.functionality_level
    assert fields["Builder"] == header.builder
    assert fields["MD5"] == header.md5


@pytest.mark.parametrize(("data", "message"), [
    (b"ClamAV-VDB:25 Nov 2026 09-15 +0000:1:2:90", "shorter than"),
    (b"NotClamAV:x".ljust(512), "not a ClamAV"),
    (b"ClamAV-VDB:25 Nov 2026 09-15 +0000:x:2:90:md5:sig:me:1".ljust(512), "non-numeric"),
    (b"ClamAV-VDB:\xff".ljust(512), "not ASCII"),
    (b"ClamAV-VDB:soon:1:2:90:md5:sig:me:1".ljust(512), "build time"),
])
def test_rejects_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(ClamavFormatError, match=message):
        parse_cvd_header(data)


def test_freshclam_conf(tmp_path: Path) -> None:
    options = parse_freshclam_conf(DEBIAN_CONF)
    assert options["DatabaseDirectory"] == "/var/lib/clamav"
    assert options["DatabaseMirror"] == "database.clamav.net"  # a repeated option: last wins
    conf = tmp_path / "freshclam.conf"
    conf.write_text(DEBIAN_CONF.replace("/var/lib/clamav", str(tmp_path / "db")))
    assert database_directory(conf) == tmp_path / "db"
    conf.write_text("# no DatabaseDirectory line\nChecks 24\n")
    assert database_directory(conf) == DEFAULT_DATABASE_DIR
    assert database_directory(tmp_path / "missing.conf") == DEFAULT_DATABASE_DIR


def test_the_newer_of_cld_and_cvd_counts(tmp_path: Path) -> None:
    write_cvd(tmp_path / "daily.cvd", BUILT - timedelta(days=30), version=27800)
    write_cvd(tmp_path / "daily.cld", BUILT, version=27832)
    found = newest_daily(tmp_path)
    assert found is not None and found[0].name == "daily.cld" and found[1].build_time == BUILT
    write_cvd(tmp_path / "daily.cvd", BUILT + timedelta(days=1), version=27833)
    found = newest_daily(tmp_path)
    assert found is not None and found[0].name == "daily.cvd"
    (tmp_path / "daily.cvd").write_bytes(b"garbage")
    found = newest_daily(tmp_path)
    assert found is not None and found[0].name == "daily.cld"
    assert newest_daily(tmp_path / "nowhere") is None


def test_clamscan_version() -> None:
    assert parse_clamscan_version("ClamAV 1.4.6/27832/Wed Nov 25 08:15:00 2026\n") == "1.4.6"
    assert parse_clamscan_version("ClamAV 0.103.11\n") == "0.103.11"
    assert parse_clamscan_version("command not found") is None


def test_collect_from_a_temp_database(clamav_defs: Callable[..., Path]) -> None:
    now = datetime.now(UTC)
    config = clamav_defs(age_days=2, now=now, filename="daily.cld", version=27999)
    (state,) = collect_clamav(config, engine_version="1.4.6")
    assert state.product == "ClamAV 1.4.6" and state.enabled
    assert state.definitions_version == "27999"
    assert state.definitions_time is not None
    assert timedelta(days=2) <= now - state.definitions_time < timedelta(days=2, minutes=1)
    assert str(config.parent / "db" / "daily.cld") in state.source


def test_installed_without_database_is_disabled(tmp_path: Path) -> None:
    conf = tmp_path / "freshclam.conf"
    conf.write_text(f"DatabaseDirectory {tmp_path / 'empty'}\n")
    (state,) = collect_clamav(conf, engine_version="1.4.6")
    assert not state.enabled and state.definitions_time is None


def test_running_daemons_from_a_proc_tree(tmp_path: Path) -> None:
    for pid, comm in ((12, "freshclam"), (40, "clamd"), (41, "bash"), (7, "clamonacc")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")
    (tmp_path / "99").mkdir()  # exited while we looked: no comm
    (tmp_path / "self").mkdir()
    assert running_daemons(tmp_path) == {"freshclam": (12,), "clamd": (40,), "clamonacc": (7,)}
    assert running_daemons(tmp_path / "absent") == {}


@pytest.mark.skipif(shutil.which("freshclam") is None, reason="freshclam not installed")
def test_real_freshclam_daemon_is_seen_running_then_stopped(
        clamav_defs: Callable[..., Path]) -> None:
    config = clamav_defs(age_days=1)
    proc = start_freshclam(config)
    try:
        assert wait_for(lambda: proc.pid in running_daemons().get("freshclam", ())), \
            f"freshclam did not start: {(config.parent / 'freshclam.log').read_text()[-500:]}"
        # Offline: its first update fails, and the daemon stays up waiting for the next check.
        assert wait_for(lambda: "ERROR: Update failed." in _log(config))
        assert proc.poll() is None
        (state,) = collect_clamav(config)
        assert state.updater_running is True and "freshclam" in state.source
    finally:
        stop_freshclam(proc)
    assert proc.pid not in running_daemons().get("freshclam", ())
    (state,) = collect_clamav(config)
    others = running_daemons().get("freshclam", ())
    assert state.updater_running is bool(others)
    assert (config.parent / "db" / "daily.cvd").exists()  # freshclam kept our database


def _log(config: Path) -> str:
    try:
        return (config.parent / "freshclam.log").read_text(errors="replace")
    except OSError:
        return ""


def test_no_proc_access_means_no_daemons(tmp_path: Path) -> None:
    locked = tmp_path / "proc"
    locked.mkdir()
    (locked / "5").mkdir()
    (locked / "5" / "comm").mkdir()  # unreadable as a file
    assert running_daemons(locked) == {}


def test_not_installed_reports_no_product(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import agent.posture.clamav as clamav

    monkeypatch.setattr(clamav, "clamscan_version", lambda: None)
    assert collect_clamav(tmp_path / "no-freshclam.conf", proc=tmp_path) == ()
