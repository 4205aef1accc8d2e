"""Verifies a DATA_DIR's audit log with the gateway's audit signing key."""

from __future__ import annotations

from pathlib import Path

from gateway.audit.keys import load_public_key
from gateway.audit.verify import VerifyResult, verify
from gateway.datadir import DataDir


def verify_data_dir(root: Path) -> VerifyResult:
    data = DataDir(root)
    try:
        key = load_public_key(data.audit_key)
    except FileNotFoundError:
        return VerifyResult(False, 0, None, f"{root} has no audit signing key: is it a "
                            "Staffroom data directory?", None)
    return verify(data.audit_dir, key)
