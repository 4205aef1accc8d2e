"""The gateway's work-receipt signing key (Ed25519), kept apart from the audit and recording keys.

Attacker-controlled here: nothing but the key file's contents (a key that is not Ed25519 is
refused). Made on first use, 0600 from the start, never logged.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.datadir import write_private

KEY_FILE = "receipt-signing.key"


def key_path(root: Path) -> Path:
    return Path(root) / KEY_FILE


def load_or_create(root: Path) -> Ed25519PrivateKey:
    path = key_path(root)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        try:
            write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
            return key
        except FileExistsError:
            pass  # another process made it first: use theirs
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 key: move it away and restart the gateway")
    return loaded


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the receipt public key must be an Ed25519 key")
    return key


def for_gateway(extras: dict[str, object], root: Path) -> Ed25519PrivateKey:
    """The gateway's receipt key, loaded (or made) once per process."""
    key = extras.get("receipt_key")
    if not isinstance(key, Ed25519PrivateKey):
        key = extras["receipt_key"] = load_or_create(root)
    return key
