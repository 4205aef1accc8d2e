"""Checks a client certificate presented at login against the school CA.

Attacker-controlled here: the whole certificate (any issuer, dates, extensions, algorithm);
it is accepted only when the CA's key signed it with ECDSA, it is in its validity window, is not
a CA, and is meant for client authentication with a signing key. Revocation is the caller's
(the state database knows it at once; the CRL is for others).
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

ECDSA_SIGNATURES = (SignatureAlgorithmOID.ECDSA_WITH_SHA256,
                    SignatureAlgorithmOID.ECDSA_WITH_SHA384)


class CertificateRejected(Exception):
    """A login certificate refused: `code` for the wire and audit, `sentence` for the person."""

    def __init__(self, code: str, sentence: str) -> None:
        super().__init__(sentence)
        self.code, self.sentence = code, sentence


def _untrusted() -> CertificateRejected:
    return CertificateRejected("cert-untrusted", "Your key's certificate was not issued by this "
                               "school's CA: ask your IT lead for a Staffroom key.")


def _wrong_usage() -> CertificateRejected:
    return CertificateRejected("cert-wrong-usage", "This certificate is not a Staffroom login "
                               "key: ask your IT lead for one.")


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # duplicate or malformed extensions: cryptography refuses to parse
        raise _wrong_usage() from None


def verify_client_cert(cert: x509.Certificate, ca_cert: x509.Certificate, *,
                       now: datetime) -> None:
    """Returns when `cert` is a valid login certificate of this CA at `now`; raises
    CertificateRejected(code, sentence) otherwise."""
    if cert.signature_algorithm_oid not in ECDSA_SIGNATURES:
        raise _untrusted()
    try:
        # Checks issuer name == CA subject and the signature with the CA's public key.
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise _untrusted() from None
    if now < cert.not_valid_before_utc:
        raise CertificateRejected("cert-not-yet-valid", "Your key's certificate is not valid "
                                  "yet: check this PC's clock.")
    if now > cert.not_valid_after_utc:
        raise CertificateRejected("cert-expired", "Your key's certificate expired on "
                                  f"{cert.not_valid_after_utc:%Y-%m-%d}: ask your school's IT "
                                  "lead for a new one.")
    constraints = _extension(cert, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        raise _wrong_usage()
    eku = _extension(cert, x509.ExtendedKeyUsage)
    if not isinstance(eku, x509.ExtendedKeyUsage) or ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise _wrong_usage()
    usage = _extension(cert, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        raise _wrong_usage()
