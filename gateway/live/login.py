"""The one owner of the teacher's login decision: nonce, certificate, revocation, signature,
resume, second factor, posture and session rules, in that order, each refusal with a stable code
and one sentence (pure; `now` passed in; the certificate parsed once, by parse_certificate).

Attacker-controlled here: everything in Hello and Login (certificate, signature, posture report,
password, code, resume secret). The nonce was issued by us and taken from the store exactly once
before this runs; the certificate must chain to the school CA and be on file, unrevoked, for
this user. A resume must name, by its secret, a disconnected session of the same user and key;
it skips the second factor (the key signs afresh) but never the posture check.
Slow (argon2id, ECDSA): the tunnel runs it in gateway.auth.pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.factors import authenticate
from gateway.pki.verify import CertificateRejected, verify_client_cert
from gateway.policy.decide import decide_session_start
from gateway.policy.effective import ResolvedPolicy
from gateway.policy.posture import decide_posture
from gateway.store.base import CertRecord, User
from gateway.wire.login import Hello, Login, transcript
from gateway.wire.posture import PostureFormatError, PostureReport

# Refusals that count towards the per-address lockout (someone guessing a factor).
FACTOR_FAILURES = frozenset({"bad-credentials", "totp-reused"})


@dataclass(frozen=True, slots=True)
class ResumeTarget:
    """The live session a resume secret names, as the broker sees it now."""

    session_id: str
    user_id: str
    cert_serial: str | None
    connected: bool  # a tunnel is still attached to it


@dataclass(frozen=True, slots=True)
class LoginFacts:
    """Everything the decision needs, gathered by the tunnel shell."""

    hello: Hello
    login: Login
    nonce: str
    nonce_ok: bool  # taken from the store just now, issued for this user
    certificate: x509.Certificate | None  # hello.certificate parsed (None: unreadable)
    record: CertRecord | None  # the store's row for its serial
    ca_cert: x509.Certificate
    server_cert_hash: bytes  # our tls-server-end-point
    user: User | None
    resolved: ResolvedPolicy
    resume: ResumeTarget | None  # what hello.resume names (None: not given, or unknown)
    active_sessions: int
    now: datetime  # aware, in the gateway's local zone (days and hours are wall-clock)


@dataclass(frozen=True, slots=True)
class LoginDecision:
    allowed: bool
    code: str
    reason: str
    user: User | None = None  # the account to store after a success (TOTP step, new hash)
    cert_serial: str | None = None
    posture: PostureReport | None = None
    resume_session: str | None = None  # allowed: resume this session instead of a new one
    rehashed: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def factors_for(second_factor: str) -> tuple[str, ...]:
    return {"password": ("password",), "totp": ("totp",), "both": ("password", "totp")}[
        second_factor]


def parse_certificate(der: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def serial_of(cert: x509.Certificate | None) -> str:
    return format(cert.serial_number, "x") if cert is not None else ""


def _deny(code: str, reason: str, **kw: Any) -> LoginDecision:
    return LoginDecision(False, code, reason, **kw)


def _check_certificate(f: LoginFacts) -> LoginDecision | None:
    cert, serial = f.certificate, serial_of(f.certificate)
    if cert is None:
        return _deny("bad-certificate", "The key's certificate could not be read: ask your IT "
                     "lead to issue the key again.")
    try:
        verify_client_cert(cert, f.ca_cert, now=f.now)
    except CertificateRejected as e:
        return _deny(e.code, e.sentence, cert_serial=serial)
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not cn or cn[0].value != f.hello.user:
        return _deny("cert-user-mismatch", "This key belongs to another user: use your own "
                     "key.", cert_serial=serial)
    if f.record is None or f.record.user_id != f.hello.user:
        return _deny("cert-unknown", "The gateway has no record of this key: ask your IT lead "
                     "to issue it again.", cert_serial=serial)
    if f.record.revoked_at is not None:
        return _deny("cert-revoked", "Your key has been revoked: ask your school's IT lead for "
                     "a new one.", cert_serial=serial, details={"reason": f.record.revoke_reason})
    return None


def _signature_ok(f: LoginFacts) -> bool:
    assert f.certificate is not None
    key = f.certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    data = transcript(f.nonce, f.server_cert_hash, f.login.posture, f.hello.user,
                      f.hello.resume)
    try:
        key.verify(f.login.signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _check_resume(f: LoginFacts, serial: str) -> LoginDecision | None:
    r = f.resume
    assert r is not None
    if r.user_id != f.hello.user or r.cert_serial != serial:
        return _deny("resume-refused", "This session belongs to another key: connect again "
                     "with `staffroom agent connect`.", cert_serial=serial)
    if r.connected:
        return _deny("session-connected", "This session is still connected from another "
                     "place: close it there first, or wait a few seconds and try again.",
                     cert_serial=serial)
    return None


def decide_login(f: LoginFacts) -> LoginDecision:
    """Every check in order; the first failure decides."""
    if not f.nonce_ok:
        return _deny("nonce", "The login took too long or was replayed: try again.")
    denial = _check_certificate(f)
    if denial is not None:
        return denial
    serial = serial_of(f.certificate)
    if not _signature_ok(f):
        return _deny("bad-signature", "The login signature did not verify (the connection may "
                     "have been intercepted): check --gateway and try again.", cert_serial=serial)
    if f.hello.resume is not None and f.resume is None:
        return _deny("resume-expired", "The session could not be resumed (it has ended, or the "
                     "link was lost too long): run `staffroom agent connect` again.",
                     cert_serial=serial)
    resuming = f.resume is not None
    if resuming:
        denial = _check_resume(f, serial)
        if denial is not None:
            return denial
    policy = f.resolved.policy
    updated, rehashed = None, False
    if not resuming:
        outcome = authenticate(f.user, password=f.login.password, totp_code=f.login.totp,
                               factors=factors_for(policy.auth.second_factor), now=f.now)
        if not outcome.ok:
            return _deny(outcome.code, outcome.reason, cert_serial=serial)
        updated, rehashed = outcome.user, outcome.rehashed
    elif f.user is None or f.user.disabled:
        return _deny("disabled", "This account is disabled: ask your IT lead.",
                     cert_serial=serial)
    try:
        report = PostureReport.from_json(f.login.posture)
    except PostureFormatError as e:
        return _deny("bad-posture", f"The posture report could not be read ({e}).",
                     cert_serial=serial)
    posture = decide_posture(report, policy.posture, f.now)
    if not posture.allowed:
        return _deny(posture.code, posture.reason, cert_serial=serial, posture=report)
    allowed = LoginDecision(True, "ok", "", user=updated, cert_serial=serial, posture=report,
                            resume_session=f.resume.session_id if f.resume else None,
                            rehashed=rehashed)
    if resuming:
        return allowed
    start = decide_session_start(f.resolved, now=f.now, active_sessions=f.active_sessions)
    if not start.allowed:
        return replace(allowed, allowed=False, code=start.code, reason=start.reason,
                       resume_session=None, details={"rule": start.rule})
    return allowed
