"""`staffroom tls renew`: a new key and server certificate for the gateway from its school CA,
for the same host names, at most 365 days (Mozilla "intermediate").

Attacker-controlled here: nothing (run by the operator on the gateway machine). The new files
replace the old ones atomically (the old pair is kept as *.old); a running gateway picks them up
on SIGHUP (new connections get the new certificate), and audits that it did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.datadir import DataDir, write_private
from gateway.pki.ca import SchoolCA


@dataclass(frozen=True, slots=True)
class Renewed:
    cert: Path
    not_after: datetime
    serial: str
    hostnames: tuple[str, ...]


def renew_server_cert(data_dir: Path, *, passphrase: bytes | None = None,
                      now: datetime | None = None) -> Renewed:
    """Raises CAError (one sentence) when the CA cannot be opened."""
    data = DataDir(data_dir)
    config = data.read_config()
    ca = SchoolCA.load(data.ca_dir, passphrase=passphrase)
    cert, key = ca.issue_server_cert(config.hostnames, now=now)
    _replace(data.tls_key, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), 0o600)
    _replace(data.tls_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Renewed(data.tls_cert, cert.not_valid_after_utc, format(cert.serial_number, "x"),
                   config.hostnames)


def _replace(path: Path, data: bytes, mode: int) -> None:
    new, old = path.with_name(path.name + ".new"), path.with_name(path.name + ".old")
    new.unlink(missing_ok=True)
    write_private(new, data, mode=mode)
    if path.exists():
        old.unlink(missing_ok=True)
        os.link(path, old)
    os.replace(new, path)


def describe(cert_file: Path) -> tuple[str, datetime]:
    """(serial, not_after) of the certificate in `cert_file`."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return format(cert.serial_number, "x"), cert.not_valid_after_utc
