"""Revocation entries and the signed CRL the gateway publishes (RFC 5280 §5).

Attacker-controlled here: nothing directly; serials and reasons come from the state database,
written by the admin API, and an unknown reason name is refused instead of published vaguely.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

# RFC 5280 §5.3.1 says CRL numbers are at most 20 octets.
MAX_CRL_NUMBER = (1 << 159) - 1


class RevocationReason(IntEnum):
    """CRLReason codes of RFC 5280 §5.3.1 (7 is unused)."""

    unspecified = 0
    keyCompromise = 1
    cACompromise = 2
    affiliationChanged = 3
    superseded = 4
    cessationOfOperation = 5
    certificateHold = 6
    removeFromCRL = 8
    privilegeWithdrawn = 9
    aACompromise = 10

    @classmethod
    def parse(cls, value: RevocationReason | str | int) -> RevocationReason:
        """Accepts the enum, its RFC 5280 name ("keyCompromise") or its code."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls[value]
            except KeyError:
                raise ValueError(f"{value!r} is not an RFC 5280 revocation reason: use one of "
                                 f"{', '.join(m.name for m in cls)}.") from None
        return cls(value)

    @property
    def flag(self) -> x509.ReasonFlags:
        return _FLAGS[self]


_FLAGS = {
    RevocationReason.unspecified: x509.ReasonFlags.unspecified,
    RevocationReason.keyCompromise: x509.ReasonFlags.key_compromise,
    RevocationReason.cACompromise: x509.ReasonFlags.ca_compromise,
    RevocationReason.affiliationChanged: x509.ReasonFlags.affiliation_changed,
    RevocationReason.superseded: x509.ReasonFlags.superseded,
    RevocationReason.cessationOfOperation: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.certificateHold: x509.ReasonFlags.certificate_hold,
    RevocationReason.removeFromCRL: x509.ReasonFlags.remove_from_crl,
    RevocationReason.privilegeWithdrawn: x509.ReasonFlags.privilege_withdrawn,
    RevocationReason.aACompromise: x509.ReasonFlags.aa_compromise,
}


@dataclass(frozen=True, slots=True)
class Revoked:
    """One revoked certificate; `reason` may be a RevocationReason or its RFC 5280 name."""

    serial: int
    revoked_at: datetime
    reason: RevocationReason | str = RevocationReason.unspecified


def _entry(r: Revoked) -> x509.RevokedCertificate:
    reason = RevocationReason.parse(r.reason)
    builder = x509.RevokedCertificateBuilder().serial_number(r.serial) \
        .revocation_date(r.revoked_at)
    # RFC 5280 §5.3.1: the reason code SHOULD be absent rather than "unspecified".
    if reason is not RevocationReason.unspecified:
        builder = builder.add_extension(x509.CRLReason(reason.flag), critical=False)
    return builder.build()


def sign_crl(issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey,
             revoked: Iterable[Revoked], *, now: datetime, next_update: datetime,
             crl_number: int, hash_algorithm: hashes.HashAlgorithm,
             ) -> x509.CertificateRevocationList:
    """A CRL of `revoked`, numbered `crl_number` (which must grow with every CRL issued)."""
    if not 0 <= crl_number <= MAX_CRL_NUMBER:
        raise ValueError("The CRL number must be between 0 and 2**159 - 1.")
    if next_update <= now:
        raise ValueError("The CRL's next update must be after its issue time.")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject).last_update(now).next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            key.public_key()), critical=False)
    )
    for r in revoked:
        builder = builder.add_revoked_certificate(_entry(r))
    return builder.sign(key, hash_algorithm)
