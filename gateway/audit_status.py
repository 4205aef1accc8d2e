"""Verifies a DATA_DIR's audit log with the gateway's audit signing key."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from gateway.audit.verify import VerifyResult, verify
from gateway.datadir import DataDir


def verify_data_dir(root: Path) -> VerifyResult:
    data = DataDir(root)
    try:
        key = load_pem_private_key(data.audit_key.read_bytes(), password=None)
    except FileNotFoundError:
        return VerifyResult(False, 0, None, f"{root} has no audit signing key: is it a "
                            "Staffroom data directory?", None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return verify(data.audit_dir, key.public_key())
