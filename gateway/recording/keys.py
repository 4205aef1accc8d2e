"""The recordings' own signing key, apart from the audit key (one stolen key forges one kind).

Layout: ``DATA_DIR/keys/`` (0700) holds ``recordings.key`` (PKCS#8, 0600) and ``recordings.pub``
(0644, for officers who verify exported recordings elsewhere). Gateways before this key signed
recordings with the audit key (``DATA_DIR/audit-signing.key``): a gateway started on such a
DATA_DIR makes the recordings key and keeps verifying those older recordings with the audit key
(each recording names its key by id in its header). Attacker-controlled here: nothing but the
key files' contents; a key that is not P-256 is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit.keys import (
    generate_signing_key,
    load_public_key,
    load_signing_key,
    public_key_pem,
    save_signing_key,
)
from gateway.datadir import write_private

log = logging.getLogger(__name__)

KEYS_DIR = "keys"
PRIVATE = "recordings.key"
PUBLIC = "recordings.pub"
LEGACY = ("audit-signing.key", "audit-signing.pub")  # what signed recordings before


def recording_key_path(data_root: Path) -> Path:
    return Path(data_root) / KEYS_DIR / PRIVATE


def recording_pub_path(data_root: Path) -> Path:
    return Path(data_root) / KEYS_DIR / PUBLIC


def load_or_create_recording_key(data_root: Path) -> ec.EllipticCurvePrivateKey:
    """The recordings key of this DATA_DIR, made (0600, in a 0700 folder) on first use."""
    path = recording_key_path(data_root)
    if path.exists():
        return load_signing_key(path)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.parent.chmod(0o700)
    key = generate_signing_key()
    save_signing_key(path, key)
    pub = recording_pub_path(data_root)
    pub.unlink(missing_ok=True)
    write_private(pub, public_key_pem(key), mode=0o644)
    log.info("made the recordings signing key in %s", path.parent)
    return key


def verification_keys(data_root: Path) -> list[ec.EllipticCurvePublicKey]:
    """Every key a recording of this DATA_DIR may be signed with: the recordings key, then the
    audit key for recordings made before it existed."""
    keys = []
    for candidate in (recording_pub_path(data_root), recording_key_path(data_root),
                      *(Path(data_root) / name for name in LEGACY)):
        if candidate.exists():
            keys.append(load_public_key(candidate))
    return keys
