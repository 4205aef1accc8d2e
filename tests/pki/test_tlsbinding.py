"""RFC 5929 tls-server-end-point agrees with openssl's DER and sha256sum / sha384."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from gateway.pki.ca import create_ca
from gateway.wire.tlsbinding import end_point_hash_name, end_point_of_der, tls_server_end_point
from tests.pki.helpers import write_pem


def test_matches_openssl_der_through_sha256sum(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA")
    cert, _ = ca.issue_server_cert(["gw.kita.example"])
    pem = write_pem(tmp_path / "server.pem", cert)
    out = subprocess.run(f"openssl x509 -in {pem} -outform der | sha256sum", shell=True,
                         capture_output=True, text=True, check=True, timeout=30).stdout
    expected = bytes.fromhex(out.split()[0])
    assert tls_server_end_point(cert) == expected
    assert end_point_of_der(cert.public_bytes(serialization.Encoding.DER)) == expected


def test_p384_ca_certificates_bind_with_sha384(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA", curve="P-384")
    cert, _ = ca.issue_server_cert(["gw"])
    der = cert.public_bytes(serialization.Encoding.DER)
    assert end_point_hash_name(cert) == "sha384"
    assert tls_server_end_point(cert) == hashlib.sha384(der).digest()
    assert end_point_of_der(der) == hashlib.sha384(der).digest()
