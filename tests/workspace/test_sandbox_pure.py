"""Pure parts of the sealed desktop: bwrap's command line, the browser policy, /etc/hosts, and
the policy key workspace.home_url."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy.schema import SCHEMA, Invalid
from gateway.workspace import sandbox
from gateway.workspace.base import InvalidAssignment
from gateway.workspace.browser import managed_policy
from gateway.workspace.desktop import hosts_file
from gateway.workspace.egress import EgressRule
from gateway.workspace.sandbox import Bind, Room, drop_argv, room_argv


def test_the_uid_is_dropped_before_bwrap_and_bwrap_never_maps_a_uid() -> None:
    argv = drop_argv(200001, 200001, room_argv(Room(), ["xterm"], info_fd=5))
    assert argv[:argv.index("bwrap")] == [
        "setpriv", "--reuid=200001", "--regid=200001", "--clear-groups", "--no-new-privs",
        "--inh-caps=-all", "--"]
    assert "--uid" not in argv and "--gid" not in argv and "--cap-add" not in argv
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-ipc", "--die-with-parent",
                 "--new-session"):
        assert flag in argv
    assert argv[-2:] == ["--", "xterm"]


def test_room_mounts_only_what_it_lists() -> None:
    room = Room(binds=(Bind(Path("/data/homes/a"), "/home/a", writable=True),
                       Bind(Path("/run/lockdown"), "/run/staffroom")))
    argv = room_argv(room, ["true"])
    text = " ".join(argv)
    assert "--bind /data/homes/a /home/a" in text
    assert "--ro-bind /run/lockdown /run/staffroom" in text
    assert "--ro-bind /usr /usr" in text and "--ro-bind /etc /etc" in text
    assert "/data" not in text.replace("/data/homes/a", "")  # nothing else of DATA_DIR
    for tmp in ("/tmp", "/run", "/var", "/dev/shm"):
        assert argv[argv.index(tmp) - 1] == "--tmpfs"
    assert argv[argv.index("--remount-ro") + 1] == "/"
    assert argv.index("--remount-ro") > max(i for i, a in enumerate(argv) if a == "--bind")


def test_browser_policy_allows_only_the_listed_hosts() -> None:
    rules = [EgressRule("grades.kita.example", 443), EgressRule("fd00::5", 8080)]
    policy = managed_policy("https://grades.kita.example/", rules, "/home/t.sato")
    assert policy["URLBlocklist"] == ["*"]
    assert policy["URLAllowlist"] == ["grades.kita.example:443", "[fd00::5]:8080",
                                      "about:blank"]
    assert policy["HomepageLocation"] == policy["RestoreOnStartupURLs"][0] == \
        "https://grades.kita.example/"
    assert policy["DownloadDirectory"] == "/home/t.sato/Downloads"
    assert policy["PrintingEnabled"] is False
    assert policy["DeveloperToolsAvailability"] == 2
    assert policy["ExtensionInstallBlocklist"] == ["*"]
    assert policy["BrowserSignin"] == 0 and policy["SyncDisabled"] is True
    assert policy["PasswordManagerEnabled"] is False
    assert managed_policy("", [], "/home/x")["HomepageLocation"] == "about:blank"


def test_hosts_file_names_allowed_hosts() -> None:
    text = hosts_file({"grades.kita.example": {"10.0.0.8", "fd00::8"}, "10.0.0.9": {"10.0.0.9"}})
    assert "10.0.0.8\tgrades.kita.example\n" in text and "fd00::8\tgrades.kita.example\n" in text
    assert "10.0.0.9\t10.0.0.9" not in text
    assert text.startswith("127.0.0.1\tlocalhost\n")


@pytest.mark.parametrize("value", ["", "https://grades.kita.example/", "http://10.0.0.8:8080/a?b"])
def test_home_url_accepts(value: str) -> None:
    assert SCHEMA["workspace"]["home_url"].check(value) == value


@pytest.mark.parametrize("value", ["file:///etc/passwd", "javascript:alert(1)", "grades.example",
                                   "https://user@evil.example/", "https://a b/", 5])
def test_home_url_refuses(value: object) -> None:
    with pytest.raises(Invalid, match="expected an http"):
        SCHEMA["workspace"]["home_url"].check(value)


def test_a_host_without_etc_hosts_gets_a_sentence_not_a_broken_room(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # bwrap cannot create a file on the read-only /etc, so a missing /etc/hosts would break
    # every room at start; the gateway says so before trying.
    missing = str(tmp_path / "no-such-hosts")
    monkeypatch.setattr(sandbox, "ETC_REPLACED", (missing,))
    with pytest.raises(InvalidAssignment, match=f"it has no {missing}, which each desktop"):
        sandbox.check_available(200000, 200000, as_root=True)
