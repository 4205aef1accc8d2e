"""The gateway's login decision: certificate, revocation, signature, second factor, posture and
session limits, each with a stable code and one sentence for the teacher (pure; `now` passed in).

Attacker-controlled here: everything in Hello and Login (certificate, signature, posture report,
password, code). The nonce was issued by us and is taken from the store exactly once before this
runs; the certificate must chain to the school CA and be on file, unrevoked, for this user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.factors import authenticate
from gateway.pki.verify import CertificateRejected, verify_client_cert
from gateway.policy.posture import decide_posture
from gateway.store.base import CertRecord, User
from gateway.wire.login import Hello, Login, transcript
from gateway.wire.posture import PostureFormatError, PostureReport


@dataclass(frozen=True, slots=True)
class LoginDecision:
    allowed: bool
    code: str
    reason: str
    user: User | None = None  # updated lockout/TOTP state to store, when a factor was checked
    cert_serial: str | None = None
    posture: PostureReport | None = None
    details: dict[str, Any] = field(default_factory=dict)


def factors_for(second_factor: str) -> tuple[str, ...]:
    return {"password": ("password",), "totp": ("totp",), "both": ("password", "totp")}[
        second_factor]


def _deny(code: str, reason: str, **kw: Any) -> LoginDecision:
    return LoginDecision(False, code, reason, **kw)


def check_certificate(hello: Hello, ca_cert: x509.Certificate, record: CertRecord | None,
                      now: datetime) -> tuple[x509.Certificate | None, LoginDecision | None]:
    try:
        cert = x509.load_der_x509_certificate(hello.certificate)
    except ValueError:
        return None, _deny("bad-certificate", "The key's certificate could not be read: ask "
                           "your IT lead to issue the key again.")
    serial = format(cert.serial_number, "x")
    try:
        verify_client_cert(cert, ca_cert, now=now)
    except CertificateRejected as e:
        return None, _deny(e.code, e.sentence, cert_serial=serial)
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not cn or cn[0].value != hello.user:
        return None, _deny("cert-user-mismatch", "This key belongs to another user: use your "
                           "own key.", cert_serial=serial)
    if record is None or record.user_id != hello.user:
        return None, _deny("cert-unknown", "The gateway has no record of this key: ask your "
                           "IT lead to issue it again.", cert_serial=serial)
    if record.revoked_at is not None:
        return None, _deny("cert-revoked", "Your key has been revoked: ask your school's IT "
                           "lead for a new one.", cert_serial=serial,
                           details={"reason": record.revoke_reason})
    return cert, None


def check_signature(cert: x509.Certificate, hello: Hello, login: Login, nonce: str,
                    server_cert_hash: bytes) -> bool:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    data = transcript(nonce, server_cert_hash, login.posture, hello.user, hello.resume)
    try:
        key.verify(login.signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def decide_login(
    *,
    hello: Hello,
    login: Login,
    nonce: str,
    server_cert_hash: bytes,
    ca_cert: x509.Certificate,
    record: CertRecord | None,
    user: User | None,
    policy: Any,  # gateway.policy.effective.Policy for this user
    now: datetime,
    resuming: bool = False,
) -> LoginDecision:
    """Every check in order; the first failure decides. A resume skips the second factor
    (the session was authenticated; the fresh token signature proves the key is still here)."""
    cert, denial = check_certificate(hello, ca_cert, record, now)
    if denial is not None:
        return denial
    assert cert is not None
    serial = format(cert.serial_number, "x")
    if not check_signature(cert, hello, login, nonce, server_cert_hash):
        return _deny("bad-signature", "The login signature did not verify (the connection may "
                     "have been intercepted): check --gateway and try again.", cert_serial=serial)
    updated = None
    if not resuming:
        outcome = authenticate(user, password=login.password, totp_code=login.totp,
                               factors=factors_for(policy.auth.second_factor), now=now)
        updated = outcome.user
        if not outcome.ok:
            return _deny(outcome.code, outcome.reason, user=updated, cert_serial=serial)
    elif user is None or user.disabled:
        return _deny("disabled", "This account is disabled: ask your IT lead.")
    try:
        report = PostureReport.from_json(login.posture)
    except PostureFormatError as e:
        return _deny("bad-posture", f"The posture report could not be read ({e}).", user=updated,
                     cert_serial=serial)
    posture = decide_posture(report, policy.posture, now)
    if not posture.allowed:
        return _deny(posture.code, posture.reason, user=updated, cert_serial=serial,
                     posture=report)
    return LoginDecision(True, "ok", "", user=updated, cert_serial=serial, posture=report)
