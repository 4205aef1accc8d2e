"""Verifies a DATA_DIR's audit trail with the gateway's audit signing key: the file log, or the
whole trail in PostgreSQL when gateway.json names a database server (gateway/audit/open.py)."""

from __future__ import annotations

from pathlib import Path

from gateway.audit.open import verify_audit
from gateway.audit.verify import VerifyResult


def verify_data_dir(root: Path) -> VerifyResult:
    return verify_audit(root)
