"""Checking a work receipt away from the gateway, with its receipt public key (PEM)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.cli_support import CliError
from gateway.wire import receipt


def verify_offline(data: bytes, key_file: Path) -> dict[str, Any]:
    try:
        key = serialization.load_pem_public_key(key_file.read_bytes())
    except (OSError, ValueError) as e:
        raise CliError(f"Cannot read the receipt public key {key_file} ({e}): save it with "
                       "`staffroom reports receipt-key --out FILE`.") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CliError(f"{key_file} is not a receipt public key (Ed25519).")
    try:
        return receipt.verify(data, [key])
    except receipt.ReceiptError as e:
        raise CliError(f"The receipt does NOT verify: {e}") from None
