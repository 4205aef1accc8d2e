"""RFC 5929 tls-server-end-point: the hash of the gateway's certificate as seen on the wire.

Shared by the agent (hashes what its TLS connection received) and the gateway (hashes what it
serves); a login signed for one certificate does not verify through a relay holding another.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding


def end_point_of_der(der: bytes) -> bytes:
    """SHA-256 of the DER certificate (RFC 5929 uses SHA-256 for SHA-1/MD5/SHA-256 signatures;
    the school CA signs with ECDSA-SHA256)."""
    return hashlib.sha256(der).digest()


def tls_server_end_point(cert: x509.Certificate) -> bytes:
    return end_point_of_der(cert.public_bytes(Encoding.DER))
