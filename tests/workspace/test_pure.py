"""Pure parts of the workspace area: assignments, user ids, secrets files, idle decisions."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from gateway.workspace import Assignment, Endpoint, InvalidAssignment, WorkspaceUnavailable
from gateway.workspace.base import check_user_id
from gateway.workspace.credentials import (
    new_vnc_password,
    obfuscate_vnc_password,
    write_private,
    xauth_entry,
)
from gateway.workspace.ime import FCITX5_CONFIG, FCITX5_PROFILE, prepare_home
from gateway.workspace.manager import Usage, idle_desktops


@pytest.mark.parametrize("user", ["t.tanaka", "yamada@school-3.example", "u_1", "A-B"])
def test_user_id_accepts_plain_names(user: str) -> None:
    assert check_user_id(user) == user


@pytest.mark.parametrize(
    "user", ["", ".", "..", "../root", "a/b", ".hidden", "a b", "x" * 65, "名前", "a\0b", "a\nb"]
)
def test_user_id_rejects_anything_that_could_leave_homes(user: str) -> None:
    with pytest.raises(InvalidAssignment):
        check_user_id(user)


def test_vnc_assignment_needs_host_and_port() -> None:
    with pytest.raises(InvalidAssignment):
        Assignment("vnc", host="10.0.0.5")
    with pytest.raises(InvalidAssignment):
        Assignment("vnc", host="10.0.0.5", port=70000)
    with pytest.raises(InvalidAssignment):
        Assignment("rdp")  # type: ignore[arg-type]
    assert Assignment().provider == "xvnc"


def test_passwords_never_appear_in_reprs() -> None:
    assert "hunter22" not in repr(Endpoint("127.0.0.1", 5901, "hunter22", ":1"))
    assert "hunter22" not in repr(Assignment("vnc", "10.0.0.5", 5901, "hunter22"))


def test_unavailable_is_one_clear_sentence() -> None:
    assert str(WorkspaceUnavailable.at("10.0.0.5", 5901)) == (
        "The school desktop at 10.0.0.5:5901 is not answering: "
        "ask your school's IT lead to check it."
    )


@pytest.mark.parametrize("password", ["secretpw", "abc", "longer-than-eight"])
def test_obfuscation_matches_vncpasswd(password: str) -> None:
    out = subprocess.run(
        ["vncpasswd", "-f"], input=password.encode() + b"\n", capture_output=True, check=True
    ).stdout
    assert obfuscate_vnc_password(password) == out  # same padding and truncation to 8


def test_new_passwords_are_random_and_fit_vncauth() -> None:
    passwords = {new_vnc_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) == 8 for p in passwords)


def test_xauth_entry_is_read_by_xauth(tmp_path: Path) -> None:
    cookie = bytes(range(16))
    write_private(tmp_path / "xa", xauth_entry(42, cookie))
    listing = subprocess.run(
        ["xauth", "-f", str(tmp_path / "xa"), "list"], capture_output=True, text=True, check=True
    ).stdout
    assert ":42" in listing and "MIT-MAGIC-COOKIE-1" in listing and cookie.hex() in listing
    assert struct.unpack(">H", xauth_entry(42, cookie)[:2]) == (0xFFFF,)


def test_write_private_is_0600_and_refuses_planted_files(tmp_path: Path) -> None:
    write_private(tmp_path / "secret", b"x")
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    for name in ("secret", "link"):
        with pytest.raises(FileExistsError):
            write_private(tmp_path / name, b"y")
    assert not (tmp_path / "elsewhere").exists()


def test_prepare_home_writes_fcitx5_profile_once(tmp_path: Path) -> None:
    prepare_home(tmp_path, None)
    profile = tmp_path / ".config/fcitx5/profile"
    assert profile.read_text() == FCITX5_PROFILE
    assert "keyboard-jp" in FCITX5_PROFILE and "Name=mozc" in FCITX5_PROFILE
    assert "0=Zenkaku_Hankaku" in FCITX5_CONFIG
    assert (tmp_path / ".config/mozc").is_dir()
    profile.write_text("teacher's own\n")
    prepare_home(tmp_path, None)
    assert profile.read_text() == "teacher's own\n"


def test_prepare_home_does_not_follow_planted_symlinks(tmp_path: Path) -> None:
    home, target = tmp_path / "home", tmp_path / "target"
    home.mkdir()
    target.mkdir()
    (home / ".config").symlink_to(target)
    with pytest.raises(OSError):
        prepare_home(home, None)
    assert os.listdir(target) == []


def test_idle_desktops_decision_table() -> None:
    usage = {
        "attached": Usage(1, None),
        "fresh": Usage(0, 100.0),
        "stale": Usage(0, 10.0),
        "exact": Usage(0, 40.0),
    }
    running = ["attached", "fresh", "stale", "exact", "unknown"]
    assert idle_desktops(usage, running, now=100.0, stop_after=60.0) == [
        "exact",
        "stale",
        "unknown",
    ]
    assert idle_desktops(usage, running, now=100.0, stop_after=1000.0) == ["unknown"]
    assert idle_desktops(usage, [], now=1e9, stop_after=0.0) == []
