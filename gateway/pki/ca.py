"""The school CA: creates itself, issues the gateway's TLS certificate and teachers' key
certificates from the named profiles in certs/profiles.toml, and signs CRLs.

Attacker-controlled here: the SubjectPublicKeyInfo to certify (EC P-256/P-384 only) and, through
the admin API, user id, display name and school (length-bounded, no control characters). The CA
key file is created 0600 with O_EXCL (never overwritten) and refused when others can read it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.pki.crl import Revoked, sign_crl
from gateway.pki.names import (
    CURVES,
    JST,
    check_crl_url,
    check_text,
    hostname_names,
    school_year_end,
)
from gateway.pki.profiles import Profile, load_profiles

KEY_FILE, CERT_FILE = "ca.key", "ca.pem"
BACKDATE = timedelta(minutes=5)  # tolerate a few minutes of clock skew between machines

__all__ = ["JST", "CAError", "SchoolCA", "create_ca", "school_year_end"]


MAX_SERVER_DAYS = 365  # Mozilla "intermediate": server certificates last a year at most

class CAError(Exception):
    """The CA cannot be created, loaded or cannot issue; the message is one sentence."""


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, mode)  # O_CREAT's mode is filtered by the umask


def _hash_for(key: ec.EllipticCurvePrivateKey) -> hashes.HashAlgorithm:
    return hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()


def create_ca(directory: Path, common_name: str, *, curve: str | None = None,
              passphrase: bytes | None = None, now: datetime | None = None,
              profiles: dict[str, Profile] | None = None) -> SchoolCA:
    """Create DATA_DIR/ca/{ca.key,ca.pem} from the root-ca profile; refuses an existing CA."""
    directory = Path(directory)
    profiles = profiles or load_profiles()
    profile = profiles["root-ca"]
    curve = curve or profile.default_curve
    if curve not in profile.curves:
        raise CAError(f"The CA curve must be one of {', '.join(profile.curves)}, not {curve}.")
    if passphrase is not None and not passphrase:
        raise CAError("The CA passphrase is empty: give a passphrase or none at all.")
    try:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             check_text(common_name, "CA name", 64))])
    except ValueError as e:
        raise CAError(str(e)) from None
    key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
    if key_path.exists() or cert_path.exists():
        raise CAError(f"A CA already exists in {directory}: refusing to overwrite it (move it "
                      "away first if you really mean to replace the school CA).")
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(CURVES[curve]())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=profile.validity_days or 3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=profile.path_length),
                       critical=True)
        .add_extension(profile.key_usage_extension(), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, _hash_for(key))
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_new(key_path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, encryption), 0o600)
    try:
        _write_new(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    except OSError:
        key_path.unlink()  # no half-made CA left behind to block the next attempt
        raise
    return SchoolCA(cert, key, profiles)


def _read_key(directory: Path, passphrase: bytes | None) -> ec.EllipticCurvePrivateKey:
    path = directory / KEY_FILE
    if path.stat().st_mode & 0o077:
        raise CAError(f"{path} is readable by other accounts: run `chmod 600 {path}` (and "
                      "consider the CA key exposed).")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except TypeError:
        if passphrase is None:
            raise CAError("The CA key is protected by a passphrase: give it with "
                          "--ca-passphrase-file or STAFFROOM_CA_PASSPHRASE.") from None
        raise CAError("The CA key is not encrypted, but a passphrase was given: leave the "
                      "passphrase out.") from None
    except ValueError:
        raise CAError("The CA key's passphrase is wrong (or the key file is damaged): check "
                      "--ca-passphrase-file.") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CAError(f"{path} is not an EC key: the school CA uses P-256 or P-384.")
    return key


class SchoolCA:
    """The CA key and certificate in memory; issues certificates by profile."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey,
                 profiles: dict[str, Profile] | None = None) -> None:
        if certificate.public_key() != key.public_key():
            raise CAError("The CA key does not belong to the CA certificate.")
        self.certificate = certificate
        self._key = key
        self._profiles = profiles or load_profiles()

    @classmethod
    def load(cls, directory: Path, passphrase: bytes | None = None,
             profiles: dict[str, Profile] | None = None) -> SchoolCA:
        directory = Path(directory)
        try:
            cert = x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())
            key = _read_key(directory, passphrase)
        except FileNotFoundError:
            raise CAError(f"No CA was found in {directory}: is this a Staffroom data "
                          "directory?") from None
        except ValueError:
            raise CAError(f"{directory / CERT_FILE} is not a PEM certificate.") from None
        return cls(cert, key, profiles)

    def _leaf(self, profile: Profile, subject: x509.Name, public_key: ec.EllipticCurvePublicKey,
              now: datetime, not_after: datetime) -> x509.CertificateBuilder:
        end = min(not_after, self.certificate.not_valid_after_utc)  # never outlive the CA
        ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        builder = (
            x509.CertificateBuilder().subject_name(subject)
            .issuer_name(self.certificate.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())  # 159 random bits, positive
            .not_valid_before(now - BACKDATE).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(profile.key_usage_extension(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ski.value), critical=False)
        )
        eku = profile.extended_key_usage_extension()
        return builder.add_extension(eku, critical=False) if eku else builder

    def issue_server_cert(self, hostnames: Iterable[str], *, now: datetime | None = None,
                          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A new key and its gateway-server certificate; SANs are DNS names or IP addresses.
        The caller writes both (the key 0600)."""
        now = now or datetime.now(UTC)
        profile = self._profiles["gateway-server"]
        try:
            names, sans = hostname_names(hostnames)
        except ValueError as e:
            raise CAError(str(e)) from None
        key = ec.generate_private_key(CURVES[profile.default_curve]())
        common = names[0] if len(names[0]) <= 64 else "Staffroom gateway"
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])
        days = min(profile.validity_days or MAX_SERVER_DAYS, MAX_SERVER_DAYS)
        # Counted from the back-dated start, so the whole lifetime is at most `days`.
        builder = self._leaf(profile, subject, key.public_key(), now,
                             now - BACKDATE + timedelta(days=days))
        cert = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False) \
            .sign(self._key, _hash_for(self._key))
        return cert, key

    def issue_client_cert(self, spki_der: bytes, *, user_id: str, name: str,
                          school: str | None, now: datetime, not_after: datetime | None = None,
                          crl_url: str | None = None) -> x509.Certificate:
        """A teacher-key certificate for the token key `spki_der`: CN = user id, O = school,
        the display name per the profile; valid to the end of the school year unless
        `not_after` (from policy) says otherwise."""
        profile = self._profiles["teacher-key"]
        try:
            public_key = serialization.load_der_public_key(spki_der)
        except (ValueError, TypeError):
            raise CAError("The public key is not a valid SubjectPublicKeyInfo.") from None
        allowed = {CURVES[c].name for c in profile.curves}
        if not isinstance(public_key, ec.EllipticCurvePublicKey) \
                or public_key.curve.name not in allowed:
            raise CAError(f"Only EC {' or '.join(profile.curves)} keys can be certified.")
        try:
            attrs = [x509.NameAttribute(NameOID.COMMON_NAME, check_text(user_id, "user id", 64))]
            if school:
                attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                                check_text(school, "school", 64)))
            oid = profile.display_name_oid()
            if oid is not None and name:
                attrs.append(x509.NameAttribute(oid, check_text(name, "display name", 128)))
            url = check_crl_url(crl_url) if crl_url else None
        except ValueError as e:
            raise CAError(str(e)) from None
        end = not_after or school_year_end(now)
        if end <= now:
            raise CAError("The certificate would expire before it is issued: check the policy's "
                          "[keys] validity.")
        if profile.max_validity_days and end - now > timedelta(days=profile.max_validity_days):
            raise CAError(f"A teacher key may be valid for at most {profile.max_validity_days} "
                          "days: shorten the policy's [keys] validity.")
        builder = self._leaf(profile, x509.Name(attrs), public_key, now, end)
        if url:
            builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(url)], None, None, None)]), critical=False)
        return builder.sign(self._key, _hash_for(self._key))

    def build_crl(self, revoked: Iterable[Revoked], *, now: datetime, next_update: datetime,
                  crl_number: int | None = None) -> x509.CertificateRevocationList:
        """A CRL signed by the CA. `crl_number` should come from the state database; without
        it the issue time in seconds is used, which grows as long as the clock does."""
        number = crl_number if crl_number is not None else int(now.timestamp())
        try:
            return sign_crl(self.certificate, self._key, revoked, now=now,
                            next_update=next_update, crl_number=number,
                            hash_algorithm=_hash_for(self._key))
        except ValueError as e:
            raise CAError(str(e)) from None
