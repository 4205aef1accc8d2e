"""RFC 5929 tls-server-end-point: the hash of the gateway's certificate as seen on the wire.

Shared by the agent (hashes what its TLS connection received) and the gateway (hashes what it
serves); a login signed for one certificate does not verify through a relay holding another.
Attacker-controlled here: the DER certificate the agent received (parsed by cryptography only to
pick the hash; any parse failure is an error, never a silent fallback).
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

# RFC 5929 §4.1: use the certificate's signature hash, but SHA-256 when that is MD5 or SHA-1.
_HASHES = {"sha256": "sha256", "sha384": "sha384", "sha512": "sha512", "md5": "sha256",
           "sha1": "sha256"}


def end_point_hash_name(cert: x509.Certificate) -> str:
    """The hashlib name RFC 5929 picks for `cert`. RFC 5929 is silent on signatures without
    a separate hash (Ed25519/Ed448): both ends use SHA-256 for those, so they still agree."""
    algorithm = cert.signature_hash_algorithm
    if algorithm is None:
        return "sha256"
    assert isinstance(algorithm, hashes.HashAlgorithm)
    try:
        return _HASHES[algorithm.name]
    except KeyError:
        raise ValueError(f"No tls-server-end-point hash for {algorithm.name} signatures.") \
            from None


def tls_server_end_point(cert: x509.Certificate) -> bytes:
    """The channel binding for `cert`: SHA-256 of its DER for the school CA's ECDSA-SHA256
    certificates (SHA-384 for a P-384 CA's ECDSA-SHA384 ones)."""
    return hashlib.new(end_point_hash_name(cert), cert.public_bytes(Encoding.DER)).digest()


def end_point_of_der(der: bytes) -> bytes:
    """tls_server_end_point of a DER certificate (what ssl.getpeercert(True) returns)."""
    cert = x509.load_der_x509_certificate(der)
    return hashlib.new(end_point_hash_name(cert), der).digest()
