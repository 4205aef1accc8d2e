"""The stale write-back found in issue 10: the tunnel stored the whole account row its login
had read, so a disable made while the login was being decided was undone. Now the login's
write is a compare-and-set that loses to the disable, and the login is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.auth import passwords
from gateway.auth.factors import authenticate
from gateway.live.login import LoginDecision
from gateway.live.recheck import attach_refusal, record_decision
from gateway.store.base import CertRecord, Store, User

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(any_store: Store) -> Store:
    s = any_store
    s.add_user(User("t.sato", "佐藤", "teacher", "kita-es", failed_logins=2,
                    password_hash=passwords.hash_password("teacher-password-1")))
    return s


def _login(store: Store) -> LoginDecision:
    """What the tunnel does: read the account, check the factors (the decision carries the
    updated row to store)."""
    outcome = authenticate(store.get_user("t.sato"), password="teacher-password-1",
                           totp_code=None, factors=("password",), now=NOW)
    assert outcome.ok and outcome.user is not None
    return LoginDecision(True, "ok", "", user=outcome.user, cert_serial="ab12")


def test_a_disable_during_the_login_is_not_undone_and_refuses_it(store: Store) -> None:
    decision = _login(store)
    store.update_user_fields("t.sato", {"disabled": True})  # an officer, meanwhile
    # The row the login holds still says "enabled": writing it back (as the tunnel did) would
    # have undone the disable.
    assert decision.user is not None and decision.user.disabled is False
    stored = record_decision(store, decision, totp_used=False)
    assert not stored.allowed and stored.code == "account-changed"
    user = store.get_user("t.sato")
    assert user is not None and user.disabled and user.failed_logins == 2


def test_an_undisturbed_login_clears_the_failure_count(store: Store) -> None:
    stored = record_decision(store, _login(store), totp_used=False)
    assert stored.allowed
    user = store.get_user("t.sato")
    assert user is not None and user.failed_logins == 0 and not user.disabled


def test_attach_reads_the_key_and_the_account_again(store: Store) -> None:
    store.add_cert(CertRecord("ab12", "t.sato", "kita-es", NOW, NOW, "pem", "cio", NOW))
    assert attach_refusal(store, "t.sato", "ab12") is None
    unknown = attach_refusal(store, "t.sato", "ffff")
    assert unknown is not None and unknown.code == "cert-unknown"
    store.revoke_cert("ab12", "keyCompromise", NOW)
    refusal = attach_refusal(store, "t.sato", "ab12")
    assert refusal is not None and refusal.code == "cert-revoked"
    store.update_user_fields("t.sato", {"disabled": True})
    refusal = attach_refusal(store, "t.sato", "ab12")
    assert refusal is not None and refusal.code == "disabled"
