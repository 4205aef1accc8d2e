"""The one login decision (gateway.live.login.decide_login), table-tested: each row changes one
fact of an otherwise good login and names the code that must come out — nonce, certificate,
revocation, signature, resume rules, second factor, posture and session rules, in that order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth import passwords
from gateway.live.login import LoginFacts, ResumeTarget, decide_login, parse_certificate
from gateway.pki.ca import SchoolCA, create_ca
from gateway.policy.load import load_policies
from gateway.store.base import CertRecord, User
from gateway.wire.login import Hello, Login, transcript
from tests.fixtures.policy import SHIPPED_POLICIES
from tests.posture.helpers import av, report

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # a Wednesday, 09:00
HASH = b"\x11" * 32
NONCE = "n-0123456789"
PASSWORD = "teacher-password-1"
PASSWORD_HASH = passwords.hash_password(PASSWORD)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> SchoolCA:
    return create_ca(tmp_path_factory.mktemp("ca") / "ca", "Test CA", now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def cert(ca: SchoolCA, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return ca.issue_client_cert(spki, user_id="t.sato", name="佐藤", school="kita-es",
                                now=NOW - timedelta(hours=1))


def _facts(ca: SchoolCA, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate,
           tmp: Path, **change: Any) -> LoginFacts:
    resume = change.pop("resume_secret", None)
    posture = report(av()).to_json()
    hello = Hello("t.sato", cert.public_bytes(serialization.Encoding.DER), resume=resume)
    signature = key.sign(transcript(NONCE, HASH, posture, "t.sato", resume),
                         ec.ECDSA(hashes.SHA256()))
    serial = format(cert.serial_number, "x")
    record = CertRecord(serial, "t.sato", "kita-es", cert.not_valid_before_utc,
                        cert.not_valid_after_utc, "", "cio", NOW)
    user = User(id="t.sato", name="佐藤", role="teacher", school="kita-es",
                password_hash=PASSWORD_HASH)
    facts = LoginFacts(
        hello=hello, login=Login(posture, signature, password=PASSWORD), nonce=NONCE,
        nonce_ok=True, certificate=parse_certificate(hello.certificate), record=record,
        ca_cert=ca.certificate, server_cert_hash=HASH, user=user,
        resolved=load_policies(SHIPPED_POLICIES).resolve("t.sato", "teacher", "kita-es"),
        resume=None, active_sessions=0, now=NOW)
    for name, value in change.items():
        value = value(facts) if callable(value) else value
        facts = replace(facts, **{name: value})
    return facts


def _connected(connected: bool) -> Callable[[LoginFacts], ResumeTarget]:
    def make(f: LoginFacts) -> ResumeTarget:
        assert f.certificate is not None
        return ResumeTarget("0a1b2c", "t.sato", format(f.certificate.serial_number, "x"),
                            connected)
    return make


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("a good login", {}, "ok"),
    ("a nonce already used", {"nonce_ok": False}, "nonce"),
    ("an unreadable certificate", {"certificate": None}, "bad-certificate"),
    ("an expired certificate", {"now": NOW + timedelta(days=800)}, "cert-expired"),
    ("a key not on file", {"record": None}, "cert-unknown"),
    ("a revoked key", {"record": lambda f: replace(f.record, revoked_at=NOW)}, "cert-revoked"),
    ("a signature over another channel", {"server_cert_hash": b"\x22" * 32}, "bad-signature"),
    ("a wrong password", {"login": lambda f: replace(f.login, password="not it at all")},
     "bad-credentials"),
    ("an unknown account", {"user": None}, "bad-credentials"),
    ("a disabled account (right password)",
     {"user": lambda f: replace(f.user, disabled=True)}, "disabled"),
    ("a posture report changed after signing",
     {"login": lambda f: replace(f.login, posture={"os": 5})}, "bad-signature"),
    ("one session already open", {"active_sessions": 1}, "too-many-sessions"),
    ("a resume secret nobody knows", {"resume_secret": "stale"}, "resume-expired"),
    ("a resume of a connected session",
     {"resume_secret": "s", "resume": _connected(True)}, "session-connected"),
    ("a resume of another key's session",
     {"resume_secret": "s", "resume": lambda f: ResumeTarget("0a1b2c", "t.sato", "ff", False)},
     "resume-refused"),
    ("a resume of another user's session",
     {"resume_secret": "s", "resume": lambda f: ResumeTarget(
         "0a1b2c", "k.kato", format(f.certificate.serial_number, "x"), False)},
     "resume-refused"),
    ("a resume by a disabled account", {"resume_secret": "s", "resume": _connected(False),
                                        "user": lambda f: replace(f.user, disabled=True)},
     "disabled"),
]


@pytest.mark.parametrize(("change", "code"), [(c, code) for _, c, code in CASES],
                         ids=[name for name, _, _ in CASES])
def test_login_decision_table(ca: SchoolCA, key: ec.EllipticCurvePrivateKey,
                              cert: x509.Certificate, tmp_path: Path, change: dict[str, Any],
                              code: str) -> None:
    decision = decide_login(_facts(ca, key, cert, tmp_path, **change))
    assert decision.code == code, decision.reason
    assert decision.allowed == (code == "ok")
    assert decision.reason or code == "ok"


def test_a_resume_of_a_disconnected_session_skips_the_password_not_the_posture(
        ca: SchoolCA, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate,
        tmp_path: Path) -> None:
    base = {"resume_secret": "s", "resume": _connected(False), "active_sessions": 1,
            "login": lambda f: replace(f.login, password=None)}
    decision = decide_login(_facts(ca, key, cert, tmp_path, **base))
    assert decision.allowed and decision.resume_session == "0a1b2c"
    stale = report(av(age=timedelta(days=30))).to_json()

    def resign(f: LoginFacts) -> Login:
        sig = key.sign(transcript(NONCE, HASH, stale, "t.sato", "s"), ec.ECDSA(hashes.SHA256()))
        return replace(f.login, posture=stale, signature=sig, password=None)
    refused = decide_login(_facts(ca, key, cert, tmp_path, **{**base, "login": resign}))
    assert not refused.allowed and refused.code == "definitions-stale"


def test_an_old_password_hash_is_upgraded_by_a_good_login(
        ca: SchoolCA, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate,
        tmp_path: Path) -> None:
    old = {"user": lambda f: replace(f.user, password_hash=passwords.legacy_scrypt_hash(
        PASSWORD))}
    decision = decide_login(_facts(ca, key, cert, tmp_path, **old))
    assert decision.allowed and decision.rehashed and decision.user is not None
    assert decision.user.password_hash.startswith("$argon2id$")
