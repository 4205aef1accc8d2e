"""The school CA: creates itself, issues the gateway's TLS certificate and teachers' key
certificates, signs CRLs and checks client certificates.

Attacker-controlled here: the SubjectPublicKeyInfo of a key to certify (parsed by cryptography,
EC P-256/P-384 only) and client certificates presented at login (verified against the CA key,
validity window, EKU). The CA key file is created 0600 and never overwritten.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.pki.profiles import Profile, load_profiles

JST = timezone(timedelta(hours=9))
CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}
REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
}


class CAError(Exception):
    """The CA cannot be created or loaded; the message is one sentence."""


class CertificateRejected(Exception):
    def __init__(self, code: str, sentence: str) -> None:
        super().__init__(sentence)
        self.code, self.sentence = code, sentence


@dataclass(frozen=True, slots=True)
class Revoked:
    serial: int
    revoked_at: datetime
    reason: str


def school_year_end(now: datetime) -> datetime:
    """31 March 23:59:59 Japan time of the school year `now` is in (years start 1 April)."""
    local = now.astimezone(JST)
    year = local.year + 1 if local.month >= 4 else local.year
    return datetime(year, 3, 31, 23, 59, 59, tzinfo=JST).astimezone(UTC)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _ski(key: ec.EllipticCurvePublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key)


def create_ca(directory: Path, common_name: str, *, curve: str = "P-256",
              passphrase: bytes | None = None, now: datetime | None = None) -> SchoolCA:
    key_path, cert_path = directory / "ca.key", directory / "ca.pem"
    if key_path.exists() or cert_path.exists():
        raise CAError(f"A CA already exists in {directory}: refusing to overwrite it.")
    profile = load_profiles()["root-ca"]
    if curve not in profile.curves:
        raise CAError(f"The CA curve must be one of {', '.join(profile.curves)}.")
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(CURVES[curve]())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=profile.validity_days or 3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=profile.path_length),
                       critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(_ski(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    _write_new(key_path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, encryption), 0o600)
    _write_new(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return SchoolCA(cert, key)


class SchoolCA:
    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.certificate = certificate
        self._key = key
        self._profiles = load_profiles()

    @classmethod
    def load(cls, directory: Path, passphrase: bytes | None = None) -> SchoolCA:
        try:
            cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
            data = (directory / "ca.key").read_bytes()
        except FileNotFoundError:
            raise CAError(f"No CA was found in {directory}: is this a Staffroom data "
                          "directory?") from None
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except TypeError:
            raise CAError("The CA key is protected by a passphrase: give it with "
                          "--ca-passphrase-file or STAFFROOM_CA_PASSPHRASE.") from None
        except ValueError:
            raise CAError("The CA key's passphrase is wrong: check --ca-passphrase-file.") \
                from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CAError("The CA key is not an EC key.")
        return cls(cert, key)

    def _builder(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey,
                 now: datetime, not_after: datetime, profile: Profile) -> x509.CertificateBuilder:
        eku = [{"server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
                "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}[u]
               for u in profile.extended_key_usage]
        ca_key = self.certificate.public_key()
        assert isinstance(ca_key, ec.EllipticCurvePublicKey)
        return (
            x509.CertificateBuilder().subject_name(subject)
            .issuer_name(self.certificate.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(_ski(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key),
                           critical=False)
        )

    def issue_server_cert(self, hostnames: Iterable[str], *, now: datetime | None = None,
                          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        now = now or datetime.now(UTC)
        names = list(hostnames)
        sans: list[x509.GeneralName] = []
        for host in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        key = ec.generate_private_key(ec.SECP256R1())
        profile = self._profiles["gateway-server"]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        builder = self._builder(subject, key.public_key(), now,
                                now + timedelta(days=profile.validity_days or 397), profile)
        cert = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False) \
            .sign(self._key, hashes.SHA256())
        return cert, key

    def issue_client_cert(self, spki_der: bytes, *, user_id: str, name: str,
                          school: str | None, now: datetime, not_after: datetime | None = None,
                          crl_url: str | None = None) -> x509.Certificate:
        public_key = serialization.load_der_public_key(spki_der)
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise CAError("Only EC keys can be certified.")
        profile = self._profiles["teacher-key"]
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, user_id)]
        if school:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, school))
        end = min(not_after or school_year_end(now), self.certificate.not_valid_after_utc)
        builder = self._builder(x509.Name(attrs), public_key, now, end, profile)
        if crl_url:
            builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False)
        return builder.sign(self._key, hashes.SHA256())

    def build_crl(self, revoked: Iterable[Revoked], *, now: datetime, next_update: datetime,
                  crl_number: int) -> x509.CertificateRevocationList:
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.certificate.subject)
                   .last_update(now).next_update(next_update)
                   .add_extension(x509.CRLNumber(crl_number), critical=False))
        for r in revoked:
            entry = (x509.RevokedCertificateBuilder().serial_number(r.serial)
                     .revocation_date(r.revoked_at)
                     .add_extension(x509.CRLReason(REASONS.get(r.reason,
                                                               x509.ReasonFlags.unspecified)),
                                    critical=False).build())
            builder = builder.add_revoked_certificate(entry)
        return builder.sign(self._key, hashes.SHA256())


def verify_client_cert(cert: x509.Certificate, ca_cert: x509.Certificate, *,
                       now: datetime) -> None:
    """Signed by our CA, within its validity, for client authentication — or rejected."""
    untrusted = CertificateRejected("cert-untrusted", "Your key's certificate was not issued by "
                                    "this school's CA: ask your IT lead for a Staffroom key.")
    if cert.issuer != ca_cert.subject:
        raise untrusted
    ca_key = ca_cert.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    try:
        assert cert.signature_hash_algorithm is not None
        ca_key.verify(cert.signature, cert.tbs_certificate_bytes,
                      ec.ECDSA(cert.signature_hash_algorithm))
    except (InvalidSignature, AssertionError):
        raise untrusted from None
    if now < cert.not_valid_before_utc:
        raise CertificateRejected("cert-not-yet-valid", "Your key's certificate is not valid "
                                  "yet: check this PC's clock.")
    if now > cert.not_valid_after_utc:
        raise CertificateRejected("cert-expired", "Your key's certificate expired on "
                                  f"{cert.not_valid_after_utc:%Y-%m-%d}: ask your school's IT "
                                  "lead for a new one.")
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise CertificateRejected("cert-wrong-usage", "This certificate is not a Staffroom "
                                  "login key: ask your IT lead for one.")
