"""The audit signing key (ECDSA P-256): made once by `staffroom init`, public half for officers.

Attacker-controlled here: nothing but the key files' contents; a key that is not P-256 is refused.
The private key file is created 0600 from the start and is never logged.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit.chain import key_id, require_p256
from gateway.datadir import write_private


def generate_signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def save_signing_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write the private key as unencrypted PKCS#8 PEM, mode 0600; refuses to overwrite."""
    require_p256(key)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(Path(path), pem)


def load_signing_key(path: Path) -> ec.EllipticCurvePrivateKey:
    return load_signing_key_bytes(Path(path).read_bytes())


def load_or_create_signing_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if Path(path).exists():
        return load_signing_key(path)
    key = generate_signing_key()
    save_signing_key(path, key)
    return key


def public_key_pem(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM: what an officer needs to run verify away from the gateway."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(path_or_pem: Path | bytes) -> ec.EllipticCurvePublicKey:
    """A public key from a PEM file or PEM bytes; a private key PEM gives its public half."""
    data = path_or_pem if isinstance(path_or_pem, bytes) else Path(path_or_pem).read_bytes()
    if b"PRIVATE KEY" in data:
        return load_signing_key_bytes(data).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the audit public key must be an ECDSA P-256 key")
    require_p256(key)
    return key


def load_signing_key_bytes(data: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the audit signing key must be an ECDSA P-256 key")
    require_p256(key)
    return key


__all__ = [
    "generate_signing_key",
    "key_id",
    "load_or_create_signing_key",
    "load_public_key",
    "load_signing_key",
    "public_key_pem",
    "save_signing_key",
]
