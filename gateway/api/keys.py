"""Keys API: key-issue challenge, certificate issuance, listing, revocation and the CRL.

Attacker-controlled here: the public key, signature, nonce and reason in each request (the key
must be an EC P-256/P-384 key that signed the gateway's single-use challenge for this user).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import timedelta

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.api.common import actor, audit, ctx, require
from gateway.api.errors import bad_request, conflict, field_str, forbidden, json_body, not_found
from gateway.audit.kinds import KeyIssued, KeyIssueRefused, KeyRevoked
from gateway.pki.ca import CAError
from gateway.pki.publish import CRL_PATH, publish_crl
from gateway.store.base import CertRecord, Conflict, Nonce, User
from gateway.wire.enrol import pop_message

REASONS = ("keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation")
CHALLENGE_TTL = timedelta(minutes=5)


def cert_json(c: CertRecord) -> dict[str, object]:
    return {
        "serial": c.serial, "user": c.user_id, "school": c.school,
        "not_before": c.not_before.isoformat(), "not_after": c.not_after.isoformat(),
        "issued_by": c.issued_by, "issued_at": c.issued_at.isoformat(),
        "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
        "revoke_reason": c.revoke_reason,
        "status": "revoked" if c.revoked_at else "valid",
    }


def _user(request: web.Request, user_id: str) -> User:
    user = ctx(request).store.get_user(user_id)
    if user is None:
        raise not_found(f"There is no account named {user_id!r}.")
    return user


def _b64(body: dict[str, object], name: str, max_len: int) -> bytes:
    try:
        return base64.b64decode(field_str(body, name, max_len=max_len) or "", validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"The field {name!r} is not valid base64.") from None


async def challenge(request: web.Request) -> web.Response:
    body = await json_body(request, max_bytes=4096)
    user = _user(request, field_str(body, "user", max_len=64) or "")
    await require(request, "keys.issue", school=user.school, subject=user.id)
    c = ctx(request)
    nonce = secrets.token_urlsafe(32)
    c.store.add_nonce(Nonce(nonce, "key-issue", user.id, c.clock() + CHALLENGE_TTL,
                            bound_to=actor(request).user_id))
    return web.json_response({"nonce": nonce, "user": user.id})


async def issue(request: web.Request) -> web.Response:
    body = await json_body(request, max_bytes=16384)
    user = _user(request, field_str(body, "user", max_len=64) or "")
    await require(request, "keys.issue", school=user.school, subject=user.id)
    if user.disabled:
        raise bad_request(f"The account {user.id} is disabled: enable it before issuing a key.")
    c = ctx(request)
    now = c.clock()
    nonce = c.store.take_nonce(field_str(body, "nonce", max_len=100) or "", "key-issue", now)
    if nonce is None or nonce.user_id != user.id or nonce.bound_to != actor(request).user_id:
        raise forbidden("The key-issue challenge is unknown, used or expired: try again.",
                        "bad-challenge")
    spki = _b64(body, "spki", 1024)
    signature = _b64(body, "signature", 512)
    try:
        public_key = serialization.load_der_public_key(spki)
    except ValueError:
        raise bad_request("The public key is not a valid SubjectPublicKeyInfo.") from None
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name not in (
        "secp256r1", "secp384r1"
    ):
        raise bad_request("Only EC P-256 or P-384 keys can be issued.")
    try:
        public_key.verify(signature, pop_message(nonce.value, user.id, spki),
                          ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        await audit(request, KeyIssueRefused(), subject=user.id, school=user.school)
        raise forbidden("The token's proof of possession did not verify.", "bad-pop") from None
    policy = c.policies.resolve(user.id, user.role, user.school).policy
    not_after = policy.keys.not_after(now)
    try:
        cert = c.ca.issue_client_cert(
            spki, user_id=user.id, name=user.name, school=user.school, now=now,
            not_after=not_after, crl_url=c.config.public_url.rstrip("/") + CRL_PATH,
        )
    except CAError as e:
        raise bad_request(str(e), "ca-refused") from None
    serial = format(cert.serial_number, "x")
    record = CertRecord(
        serial=serial, user_id=user.id, school=user.school,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        issued_by=actor(request).user_id, issued_at=now,
    )
    await audit(request, KeyIssued(serial=serial, not_after=record.not_after.isoformat()),
                subject=user.id, school=user.school)
    c.store.add_cert(record)
    return web.json_response({**cert_json(record), "certificate": record.pem}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    a = actor(request)
    user_id = request.query.get("user")
    school = a.school if a.school else request.query.get("school")
    if user_id:
        school = _user(request, user_id).school
    await require(request, "keys.read", school=school if school else a.school)
    certs = ctx(request).store.list_certs(user_id=user_id or None, school=school)
    return web.json_response({"keys": [cert_json(c) for c in certs]})


def _not_revoked(cert: CertRecord) -> None:
    if cert.revoked_at is not None:
        raise conflict(
            f"Certificate {cert.serial} is already revoked ({cert.revoke_reason}, "
            f"{cert.revoked_at:%Y-%m-%d %H:%M} UTC)."
        )


async def _revoke_one(request: web.Request, cert: CertRecord, reason: str) -> CertRecord:
    c = ctx(request)
    _not_revoked(cert)
    now = c.clock()
    await audit(request, KeyRevoked(serial=cert.serial, reason=reason), subject=cert.user_id,
                school=cert.school)
    try:
        c.store.revoke_cert(cert.serial, reason, now)
    except Conflict as e:
        raise conflict(str(e)) from None
    return c.store.get_cert(cert.serial) or cert


def _reason(body: dict[str, object]) -> str:
    reason = field_str(body, "reason", max_len=40) or ""
    if reason not in REASONS:
        raise bad_request(f"The reason must be one of: {', '.join(REASONS)}.")
    return reason


async def revoke(request: web.Request) -> web.Response:
    body = await json_body(request, max_bytes=4096)
    reason = _reason(body)
    serial = field_str(body, "serial", required=False, max_len=80)
    user_id = field_str(body, "user", required=False, max_len=64)
    store = ctx(request).store
    if serial:
        cert = store.get_cert(serial.lower().replace(":", "").lstrip("0") or "0")
        if cert is None:
            raise not_found(f"There is no certificate with serial {serial}.")
        await require(request, "keys.revoke", school=cert.school, subject=cert.user_id)
        _not_revoked(cert)
        targets = [cert]
    elif user_id:
        user = _user(request, user_id)
        await require(request, "keys.revoke", school=user.school, subject=user.id)
        targets = [c for c in store.list_certs(user_id=user.id) if c.revoked_at is None]
        if not targets:
            raise conflict(f"{user.id} has no valid certificate to revoke.")
    else:
        raise bad_request("Name a certificate serial or a user to revoke.")
    # Live sessions end first (and logins in flight are fenced): nothing below can stop that.
    broker = ctx(request).extras.get("broker")
    if broker is not None:
        await broker.end_user_sessions(targets[0].user_id, "Your key was revoked, so this "
                                       "session ended: ask your school's IT lead for a new key.")
    revoked = [await _revoke_one(request, c, reason) for c in targets]
    publish_crl(ctx(request))
    return web.json_response({"revoked": [cert_json(c) for c in revoked]})


async def crl_pem(request: web.Request) -> web.Response:
    return web.Response(body=ctx(request).data.crl.read_bytes(),
                        content_type="application/x-pem-file")


async def crl_der(request: web.Request) -> web.Response:
    crl = x509.load_pem_x509_crl(ctx(request).data.crl.read_bytes())
    return web.Response(body=crl.public_bytes(serialization.Encoding.DER),
                        content_type="application/pkix-crl")
