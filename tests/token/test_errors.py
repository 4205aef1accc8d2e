"""Every token failure is one sentence the person can act on, and never shows the PIN."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from pkcs11 import exceptions as p11

from agent import token as token_module
from agent.token import WRONG_PIN, TokenError, open_token, read_certificates
from tests.fixtures.softhsm import SoftToken, make_token, softhsm_module


def sentence(**kwargs: Any) -> str:
    module = kwargs.pop("module")
    with pytest.raises(TokenError) as e, open_token(module, **kwargs):
        pass
    text = str(e.value)
    assert text.endswith(".") and "\n" not in text
    # No PKCS#11 exception chained underneath: the sentence is the whole story.
    assert e.value.__cause__ is None
    assert e.value.__context__ is None or e.value.__suppress_context__
    return text


def test_wrong_pin(softhsm_token: SoftToken) -> None:
    t = softhsm_token
    wrong = "99" + t.pin
    assert sentence(module=t.module, token_label=t.label, pin=wrong) == \
        "The PIN is wrong: try again (the token locks after a few wrong tries)."
    assert WRONG_PIN == "The PIN is wrong: try again (the token locks after a few wrong tries)."
    # The right PIN still works afterwards (SoftHSM2 does not count tries; real tokens do).
    with open_token(t.module, token_label=t.label, pin=t.pin):
        pass


def test_pin_never_in_errors_or_logs(softhsm_token: SoftToken,
                                     caplog: pytest.LogCaptureFixture) -> None:
    t = softhsm_token
    caplog.set_level("DEBUG")
    secret = "73" + t.pin[::-1]
    for kwargs in ({"token_label": t.label}, {"token_label": "absent"}, {"slot": 4242}):
        assert secret not in sentence(module=t.module, pin=secret, **kwargs)
    with open_token(t.module, token_label=t.label, pin=t.pin) as token:
        token.generate_key("k")
    assert secret not in caplog.text and t.pin not in caplog.text


def test_empty_pin_is_refused_before_the_token_counts_it(softhsm_token: SoftToken) -> None:
    t = softhsm_token
    assert sentence(module=t.module, token_label=t.label, pin="") == \
        "No PIN was given: type the PIN of your authentication key."


def test_module_path(tmp_path: Path, softhsm_token: SoftToken) -> None:
    missing = tmp_path / "nope" / "opensc-pkcs11.so"
    assert sentence(module=str(missing), pin="1234").startswith(
        f"The PKCS#11 module {missing} does not exist: check --module")
    not_a_library = tmp_path / "libfake.so"
    not_a_library.write_bytes(b"\x7fELF but not really")
    assert sentence(module=str(not_a_library), pin="1234").startswith(
        f"{not_a_library} is not a PKCS#11 library: check --module")
    libz = next(iter(sorted(Path("/usr/lib").glob("*/libz.so.1"))), None)
    if libz is not None:  # a real shared library without C_GetFunctionList
        assert "is not a PKCS#11 library" in sentence(module=str(libz), pin="1234")
    with pytest.raises(TokenError, match="does not exist"):
        read_certificates(str(missing))


def test_unknown_label_and_empty_slot(softhsm_token: SoftToken) -> None:
    t = softhsm_token
    assert sentence(module=t.module, token_label="no-such-token", pin=t.pin) == \
        "No token labelled 'no-such-token' was found: plug your key in or check --token-label."
    assert sentence(module=t.module, slot=987654, pin=t.pin) == \
        "There is no token in slot 987654: plug your key in or check --slot."


def test_token_not_initialised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SoftHSM2 always offers one free, uninitialised token (slot 0 before any init)."""
    conf = tmp_path / "softhsm2.conf"
    (tmp_path / "tokens").mkdir()
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nlog.level = ERROR\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    module = softhsm_module()
    text = "The token is not initialised: ask your school's IT lead to set it up."
    assert sentence(module=module, slot=0, pin="123456") == text
    assert sentence(module=module, pin="123456") == text  # nothing else plugged in


def test_user_pin_not_initialised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token initialised by its SO without a user PIN (pkcs11-tool --init-token only)."""
    t = make_token(tmp_path / "a")
    monkeypatch.setenv("SOFTHSM2_CONF", str(t.conf))
    free = subprocess.run(["softhsm2-util", "--show-slots"], env=t.env, capture_output=True,
                          text=True, check=True).stdout
    slot = int(re.findall(r"^Slot (\d+)$", free, re.MULTILINE)[-1])  # the free one is last
    subprocess.run(["pkcs11-tool", "--module", t.module, "--slot", str(slot), "--init-token",
                    "--label", "blank", "--so-pin", t.so_pin], env=t.env, check=True,
                   capture_output=True, timeout=30)
    assert sentence(module=t.module, token_label="blank", pin="123456") == \
        "This token has no user PIN yet: ask your school's IT lead to initialise it."


class _LockedToken:
    """Stands in for pkcs11.Token where SoftHSM2 cannot help: it never locks a PIN."""

    def __init__(self, flags: pkcs11.TokenFlag, error: type[Exception] | None) -> None:
        self.flags, self.error, self.opened = flags, error, 0

    def open(self, **_: Any) -> None:
        self.opened += 1
        assert self.error is not None
        raise self.error()


def test_locked_pin_sentence() -> None:
    locked = _LockedToken(pkcs11.TokenFlag.TOKEN_INITIALIZED | pkcs11.TokenFlag.USER_PIN_LOCKED,
                          None)
    with pytest.raises(TokenError, match=r"^The token's PIN is locked after too many wrong"):
        token_module._login(locked, "123456")
    assert locked.opened == 0  # no try spent on a locked token
    refusing = _LockedToken(pkcs11.TokenFlag.TOKEN_INITIALIZED, p11.PinLocked)
    with pytest.raises(TokenError, match=r"^The token's PIN is locked after too many wrong"):
        token_module._login(refusing, "123456")


def test_token_module_imports_only_what_the_agent_may() -> None:
    """agent/token.py: standard library, cryptography, python-pkcs11 and gateway.wire only."""
    import ast
    import sys

    tree = ast.parse(Path(token_module.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    allowed = ("cryptography", "pkcs11", "gateway.wire")
    bad = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names
           and not m.startswith(allowed)}
    assert not bad
