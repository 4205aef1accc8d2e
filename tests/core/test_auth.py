"""Passwords, TOTP (RFC 6238 with one step of skew, single use) and lockout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from gateway.auth import passwords, totp
from gateway.auth.factors import authenticate
from gateway.store.base import User

NOW = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def make_user(**kw: object) -> User:
    base = dict(id="t.tanaka", name="Tanaka", role="teacher", school="s1",
                password_hash=passwords.hash_password("correct horse battery"),
                totp_secret=SECRET)
    base.update(kw)
    return User(**base)  # type: ignore[arg-type]


def test_password_round_trip_and_wrong_password() -> None:
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password("correct horse battery", stored)
    assert not passwords.verify_password("correct horse batterz", stored)
    assert not passwords.verify_password("anything", None)
    assert not passwords.verify_password("anything", "scrypt$99999999$8$1$AA==$AA==")


def test_short_password_refused_with_sentence() -> None:
    with pytest.raises(passwords.WeakPassword, match="at least 10 characters"):
        passwords.hash_password("short")


def test_generated_passwords_are_distinct_and_readable() -> None:
    made = {passwords.generate_password() for _ in range(50)}
    assert len(made) == 50
    assert all(not set(p) & set("0O1lI") for p in made)


@pytest.mark.parametrize("offset,ok", [(-60, False), (-30, True), (0, True), (30, True),
                                       (60, False)])
def test_totp_allows_one_step_of_skew(offset: int, ok: bool) -> None:
    code = pyotp.TOTP(SECRET).at(NOW + timedelta(seconds=offset))
    assert (totp.match_step(SECRET, code, NOW, -1) is not None) is ok


def test_totp_code_once_used_is_refused() -> None:
    code = totp.current_code(SECRET, NOW)
    step = totp.match_step(SECRET, code, NOW, -1)
    assert step is not None
    assert totp.match_step(SECRET, code, NOW, step) is None
    assert totp.match_step(SECRET, code, NOW + timedelta(seconds=10), step) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 456"])
def test_totp_rejects_malformed_codes(code: str) -> None:
    assert totp.match_step(SECRET, code, NOW, -1) is None


def test_authenticate_password_and_totp_updates_state() -> None:
    user = make_user()
    code = totp.current_code(SECRET, NOW)
    out = authenticate(user, password="correct horse battery", totp_code=code,
                       factors=("password", "totp"), now=NOW)
    assert out.ok and out.user is not None
    assert out.user.totp_last_step == int(NOW.timestamp()) // 30
    again = authenticate(out.user, password="correct horse battery", totp_code=code,
                         factors=("password", "totp"), now=NOW)
    assert not again.ok and again.code == "totp-reused"
    assert "already used" in again.reason


def test_failures_store_nothing_and_an_admin_lock_holds_only_after_the_factors() -> None:
    user = make_user()
    for _ in range(6):
        out = authenticate(user, password="wrong password!", totp_code=None,
                           factors=("password",), now=NOW)
        assert not out.ok and out.code == "bad-credentials" and out.user is None
    locked = make_user(locked_until=NOW + timedelta(minutes=15))
    wrong = authenticate(locked, password="wrong password!", totp_code=None,
                         factors=("password",), now=NOW)
    assert wrong.code == "bad-credentials"  # the lock is not told to someone without the password
    right = authenticate(locked, password="correct horse battery", totp_code=None,
                         factors=("password",), now=NOW + timedelta(minutes=5))
    assert not right.ok and right.code == "locked"
    later = authenticate(locked, password="correct horse battery", totp_code=None,
                         factors=("password",), now=NOW + timedelta(minutes=16))
    assert later.ok and later.user is not None and later.user.locked_until is None


def test_disabled_and_unenrolled_are_told_only_with_the_right_password() -> None:
    out = authenticate(make_user(disabled=True), password="wrong password!",
                       totp_code=None, factors=("password",), now=NOW)
    assert out.code == "bad-credentials"
    out = authenticate(make_user(totp_secret=None), password="wrong password!",
                       totp_code="123456", factors=("password", "totp"), now=NOW)
    assert out.code == "bad-credentials"


def test_argon2id_with_owasp_parameters() -> None:
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert not passwords.needs_rehash(stored)


def test_a_planted_hash_with_a_huge_cost_is_refused_unrun() -> None:
    planted = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$" + "A" * 43
    assert not passwords.verify_password("anything at all", planted)


def test_old_scrypt_hash_verifies_and_is_upgraded_at_the_next_login() -> None:
    old = make_user(password_hash=passwords.legacy_scrypt_hash("correct horse battery"))
    assert passwords.needs_rehash(old.password_hash)
    wrong = authenticate(old, password="wrong password!", totp_code=None,
                         factors=("password",), now=NOW)
    assert not wrong.ok and wrong.user is None
    out = authenticate(old, password="correct horse battery", totp_code=None,
                       factors=("password",), now=NOW)
    assert out.ok and out.rehashed and out.user is not None
    assert out.user.password_hash.startswith("$argon2id$")
    assert passwords.verify_password("correct horse battery", out.user.password_hash)
    again = authenticate(out.user, password="correct horse battery", totp_code=None,
                         factors=("password",), now=NOW)
    assert again.ok and not again.rehashed


def test_unknown_user_and_disabled_user() -> None:
    out = authenticate(None, password="x" * 12, totp_code=None, factors=("password",), now=NOW)
    assert not out.ok and out.code == "bad-credentials"
    out = authenticate(make_user(disabled=True), password="correct horse battery",
                       totp_code=None, factors=("password",), now=NOW)
    assert not out.ok and out.code == "disabled"


def test_totp_factor_without_enrolment() -> None:
    out = authenticate(make_user(totp_secret=None), password=None, totp_code="123456",
                       factors=("totp",), now=NOW)
    assert not out.ok and out.code == "totp-not-enrolled"
