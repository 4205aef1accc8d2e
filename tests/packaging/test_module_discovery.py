"""The key's module found, not typed: --module, then $STAFFROOM_PKCS11_MODULE, then the installed
config file, then the probe list; and `staffroom-agent check` says which and why (real SoftHSM2)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent import __version__
from agent.cli_support import CliError
from agent.install_config import AgentConfig, load_config, parse_config
from agent.token_module import Driver, expand, find_module, load_drivers, probe
from tests.fixtures.softhsm import make_token

AGENT = str(Path(sys.executable).with_name(
    "staffroom-agent.exe" if sys.platform == "win32" else "staffroom-agent"))


def _drivers(tmp: Path) -> tuple[Driver, ...]:
    b_paths = {"linux": (str(tmp / "b.so"),), "windows": ("%ProgramFiles%\\B\\b.dll",)}
    return (Driver("Vendor A", "A keys", "the A client", {"linux": (str(tmp / "a" / "*.so"),)}),
            Driver("Vendor B", "B keys", "the B client", b_paths))


def _touch(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF")
    return str(path)


def test_order_flag_env_config_probe(tmp_path: Path) -> None:
    drivers = _drivers(tmp_path)
    b = _touch(tmp_path / "b.so")
    flag, env_mod, conf_mod = (_touch(tmp_path / f"{n}.so") for n in ("flag", "env", "conf"))
    config = AgentConfig(path=tmp_path / "c.toml", module=conf_mod)
    env = {"STAFFROOM_PKCS11_MODULE": env_mod}
    pick = find_module("linux", flag=flag, env=env, config=config, drivers=drivers)
    assert (pick.path, pick.why) == (flag, "--module")
    pick = find_module("linux", flag=None, env=env, config=config, drivers=drivers)
    assert (pick.path, pick.why) == (env_mod, "STAFFROOM_PKCS11_MODULE")
    pick = find_module("linux", flag=None, env={}, config=config, drivers=drivers)
    assert (pick.path, pick.why) == (conf_mod, f"the config file {tmp_path / 'c.toml'}")
    pick = find_module("linux", flag=None, env={}, config=AgentConfig(None), drivers=drivers)
    assert (pick.path, pick.driver) == (b, "Vendor B")
    a = _touch(tmp_path / "a" / "liba.so")  # earlier in the list wins
    pick = find_module("linux", flag=None, env={}, config=AgentConfig(None), drivers=drivers)
    assert (pick.path, pick.why) == (a, "found the Vendor A driver")


def test_a_named_module_that_is_missing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CliError, match=r"The key driver .*gone.so \(from STAFFROOM_PKCS11_MODULE"
                                       r"\) does not exist"):
        find_module("linux", flag=None, env={"STAFFROOM_PKCS11_MODULE": str(tmp_path / "gone.so")},
                    config=AgentConfig(None), drivers=())
    # A bare library name is the OS loader's business.
    assert find_module("linux", flag="opensc-pkcs11.so", env={}, config=AgentConfig(None),
                       drivers=()).path == "opensc-pkcs11.so"


def test_none_found_names_the_drivers_to_install(tmp_path: Path) -> None:
    with pytest.raises(CliError) as e:
        find_module("linux", flag=None, env={}, config=AgentConfig(None),
                    drivers=_drivers(tmp_path))
    msg = str(e.value)
    assert msg.startswith("No driver for your key is installed on this computer: have it "
                          "installed with administrator rights")
    assert "A keys: the A client" in msg and "B keys: the B client" in msg


def test_windows_paths_expand_environment_variables(tmp_path: Path) -> None:
    assert expand("%ProgramFiles%\\B\\b.dll", "windows", {"ProgramFiles": "C:\\Program Files"}) \
        == ["C:\\Program Files\\B\\b.dll"]
    assert expand("%ProgramFiles(x86)%\\J\\j.dll", "windows", {}) == []  # unset: cannot exist
    seen = probe("windows", {"ProgramFiles": "C:\\Program Files"}, _drivers(tmp_path),
                 exists=lambda p: p == "C:\\Program Files\\B\\b.dll")
    assert [c.driver for c in seen] == ["Vendor B"]


def test_shipped_driver_list() -> None:
    drivers = load_drivers()
    names = [d.name for d in drivers]
    assert names[0] == "OpenSC" and names[-1] == "SoftHSM2"
    assert any("JPKI" in n for n in names) and any("SafeNet" in n for n in names)
    assert any("YubiKey" in n for n in names)
    for os_name in ("windows", "macos"):
        assert all(d.paths[os_name] for d in drivers), os_name
    opensc = drivers[0].paths["windows"]
    assert opensc[0] == "%ProgramFiles%\\OpenSC Project\\OpenSC\\pkcs11\\opensc-pkcs11.dll"


def test_config_file_values_and_relative_paths(tmp_path: Path) -> None:
    conf = tmp_path / "staffroom-agent.toml"
    conf.write_text('gateway = "https://gw.example.jp:8443"\nca = "ca.pem"\n'
                    'module = "drivers/key.so"\ntoken_label = "staffroom"\n', encoding="utf-8")
    c = load_config("linux", {"STAFFROOM_AGENT_CONFIG": str(conf)})
    assert c == AgentConfig(conf, "https://gw.example.jp:8443", str(tmp_path / "ca.pem"),
                            str(tmp_path / "drivers" / "key.so"), "staffroom")
    # Next to the program is where the MSI puts it.
    assert load_config("linux", {"HOME": str(tmp_path / "h")}, program=tmp_path).path == conf
    assert load_config("linux", {"HOME": str(tmp_path / "h")}, program=tmp_path / "x").path \
        is None


@pytest.mark.parametrize(("text", "message"), [
    ('gateway = "https://gw"\nserver = "x"\n', ":2: unknown setting 'server'"),
    ('gateway = "https://gw"\n\nca = 3\n', ":3: ca must be a non-empty string in quotes."),
    ('gateway = "https://gw\n', ":1: not valid TOML"),
])
def test_config_file_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    conf = tmp_path / "staffroom-agent.toml"
    conf.write_text(text, encoding="utf-8")
    with pytest.raises(CliError) as e:
        parse_config(conf)
    assert str(e.value).startswith(str(conf)) and message in str(e.value)


def test_version_matches_the_project() -> None:
    assert __version__ == importlib.metadata.version("staffroom")
    out = subprocess.run([AGENT, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith(f"staffroom-agent {__version__} (")


def _check(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGENT, "check", *args], capture_output=True, text=True, timeout=60,
                          env=env | {"HOME": str(tmp_path / "home")}, stdin=subprocess.DEVNULL)


def test_check_says_which_module_and_why(tmp_path: Path) -> None:
    token = make_token(tmp_path / "hsm")
    env = {**os.environ, "SOFTHSM2_CONF": str(token.conf)}
    env.pop("STAFFROOM_PKCS11_MODULE", None)
    env.pop("STAFFROOM_AGENT_CONFIG", None)
    out = _check(tmp_path, env | {"STAFFROOM_PKCS11_MODULE": token.module}, "--token-label",
                 token.label)
    assert f"✔ Key driver          {token.module} (STAFFROOM_PKCS11_MODULE)" in out.stdout
    assert f"✔ Authentication key  token {token.label}" in out.stdout
    conf = tmp_path / "staffroom-agent.toml"
    conf.write_text(f'module = "{token.module}"\ntoken_label = "{token.label}"\n')
    out = _check(tmp_path, env | {"STAFFROOM_AGENT_CONFIG": str(conf)})
    assert f"✔ Key driver          {token.module} (the config file {conf})" in out.stdout
    assert f"✔ Authentication key  token {token.label}" in out.stdout
    out = _check(tmp_path, env | {"STAFFROOM_AGENT_CONFIG": str(conf)}, "--module",
                 str(tmp_path / "nope.so"))
    assert re.search(r"✘ Key driver +none found — The key driver .*nope.so \(from --module\)",
                     out.stdout)
    assert out.returncode == 1 and "Traceback" not in out.stderr


def test_connect_without_gateway_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAFFROOM_")}
    pin = tmp_path / "pin"
    pin.write_text("1234\n")
    out = subprocess.run([AGENT, "connect", "--pin-file", str(pin)], capture_output=True,
                         text=True, timeout=60, env=env | {"HOME": str(tmp_path)},
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert out.stderr == ("staffroom-agent: No gateway address is configured: pass --gateway, or "
                          "reinstall the agent your school gave you (its config file names "
                          "both).\n")
