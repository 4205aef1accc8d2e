"""`staffroom policy upgrade`: an older default.toml gets the keys this version ships, each at
the end of its table with the shipped comment, and keeps every line, value and comment the
admin wrote; files it cannot safely edit are refused with what to add."""

from __future__ import annotations

import json
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.policy.load import check_dir, key_lines, parse_file, shipped_lines
from gateway.policy.schema import SCHEMA
from gateway.policy.upgrade import UpgradeError, merge, missing
from tests.fixtures.policy import SHIPPED_POLICIES

SHIPPED = (SHIPPED_POLICIES / "default.toml").read_text(encoding="utf-8")


def older(text: str = SHIPPED) -> str:
    """default.toml as an admin of an older version kept it: no [keys] table and no
    display.max_frame_rate (nor its comment), their own idle timeout, a comment of their own."""
    lines = text.splitlines()
    lines = lines[:lines.index("[keys]")]
    rate = next(i for i, line in enumerate(lines) if line.startswith("max_frame_rate = "))
    start = rate
    while lines[start - 1].startswith("#"):
        start -= 1
    del lines[start:rate + 1]
    out = "\n".join(lines).rstrip() + "\n"
    out = out.replace('idle_timeout = "15m"', 'idle_timeout = "40m"  # our board decided 2026')
    return out.replace("[display]\n", "[display]\n# Kita board: see the minutes of 2026-04\n")


def is_subsequence(small: list[str], big: list[str]) -> bool:
    rest = iter(big)
    return all(line in rest for line in small)


def test_an_older_file_gets_each_missing_key_and_keeps_the_admins_lines(tmp_path: Path) -> None:
    text = older()
    adds = missing(text, SHIPPED)
    assert [(a.section, a.key) for a in adds] == [("display", "max_frame_rate"),
                                                 ("keys", "valid_until")]
    assert adds[0].lines[0].startswith("# At most this many frames")  # the shipped comment
    merged = merge(text, adds)
    assert is_subsequence(text.splitlines(), merged.splitlines())
    parsed = tomllib.loads(merged)
    assert parsed["session"]["idle_timeout"] == "40m"
    for section, keys in SCHEMA.items():
        assert set(keys) <= set(parsed[section]), section
    # Each key sits inside its own table, after the table's other settings.
    at = key_lines(merged)
    assert at[("display",)] < at[("display", "quality")] < at[("display", "max_frame_rate")] \
        < at[("recording",)]
    (tmp_path / "default.toml").write_text(merged, encoding="utf-8")
    values = parse_file(tmp_path / "default.toml", complete=True).values
    shipped = parse_file(SHIPPED_POLICIES / "default.toml", complete=True).values
    assert values["session"].pop("idle_timeout") == timedelta(minutes=40)
    shipped["session"].pop("idle_timeout")
    assert values == shipped
    assert missing(merged, SHIPPED) == []


def test_the_next_tables_heading_comment_stays_with_it() -> None:
    text = "[display]\nquality = \"lossy\"\n\n# ---- recording ----\n[recording]\nenabled = true\n"
    shipped = "[display]\n# why\nmax_frame_rate = 0\n\n[recording]\nenabled = true\n"
    merged = merge(text, missing(text, shipped))
    assert merged == ("[display]\nquality = \"lossy\"\n# why\nmax_frame_rate = 0\n\n"
                      "# ---- recording ----\n[recording]\nenabled = true\n")


def test_a_file_with_windows_line_ends_keeps_them() -> None:
    text = older().replace("\n", "\r\n")
    merged = merge(text, missing(text, SHIPPED))
    assert "\n" not in merged.replace("\r\n", "")
    assert is_subsequence(text.split("\r\n"), merged.split("\r\n"))
    assert missing(merged, SHIPPED) == []


@pytest.mark.parametrize(("text", "message"), [
    ("display = { quality = \"lossy\" }\n",
     "default.toml sets [display] without a `[display]` header: add `max_frame_rate = 30` to it "
     "yourself."),
    ("display.quality = \"lossy\"\n",
     "default.toml sets [display] without a `[display]` header: add `max_frame_rate = 30` to it "
     "yourself."),
])
def test_a_table_set_another_way_is_left_to_the_admin(text: str, message: str) -> None:
    with pytest.raises(UpgradeError) as e:
        merge(text, [a for a in missing(text, SHIPPED) if a.section == "display"])
    assert str(e.value) == message


def test_every_required_key_has_a_shipped_line() -> None:
    lines = shipped_lines(SHIPPED)
    assert {(s, k) for s, keys in SCHEMA.items() for k in keys} <= set(lines)


def test_the_command_upgrades_a_data_dir_once(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    policies = tmp_path / "data" / "policies"
    policies.mkdir(parents=True)
    target = policies / "default.toml"
    target.write_text(older(), encoding="utf-8")
    target.chmod(0o640)  # the admin's own mode is kept
    before = target.read_bytes()
    assert [p.split(":")[2].strip() for p in check_dir(policies)] == \
        ["display.max_frame_rate", "keys.valid_until"]
    assert "`staffroom policy upgrade` adds it" in check_dir(policies)[0]

    assert main(["policy", "upgrade", "--data", str(tmp_path / "data"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would add 2 setting(s)" in out and "Nothing was written" in out
    assert target.read_bytes() == before

    assert main(["policy", "upgrade", "--data", str(tmp_path / "data"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [a["setting"] for a in report["added"]] == ["max_frame_rate = 30",
                                                      'valid_until = "school-year-end"']
    assert report["written"] and report["problems"] == []
    assert Path(report["backup"]).read_bytes() == before
    assert check_dir(policies) == []
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in policies.iterdir()) == ["default.toml",
                                                          Path(report["backup"]).name]

    assert main(["policy", "upgrade", str(policies)]) == 0
    assert "already sets every key" in capsys.readouterr().out


def test_the_command_keeps_windows_line_ends(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "default.toml"
    target.write_bytes(older().replace("\n", "\r\n").encode())
    assert main(["policy", "upgrade", str(tmp_path)]) == 0
    data = target.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n") and b"max_frame_rate = 30\r\n" in data
    assert check_dir(tmp_path) == []


def test_a_broken_file_gets_one_sentence(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "default.toml").write_text("[display\n", encoding="utf-8")
    assert main(["policy", "upgrade", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("staffroom: default.toml is not valid TOML (") and "Traceback" not in err
    assert main(["policy", "upgrade", str(tmp_path / "none")]) == 1
    assert "There is no" in capsys.readouterr().err
