"""TLS to Mozilla "intermediate": a real handshake offers only X25519, P-256 and P-384; the
server certificate lasts at most 365 days; `staffroom tls renew` replaces it (old pair kept)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.datadir import DataDir
from gateway.pki.ca import SchoolCA
from gateway.tlsconfig import server_context
from tests.fixtures.gateway import STAFFROOM, free_port


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tls") / "data"
    subprocess.run([STAFFROOM, "init", str(root), "--hostname", "localhost", "--hostname",
                    "127.0.0.1", "--json"], check=True, capture_output=True, timeout=60)
    return root


def _client(port: int, ca: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(ca),
         "-verify_return_error", *extra], input="", capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("groups", "tls", "accepted"), [
    ("X25519", "-tls1_3", True), ("P-256", "-tls1_3", True), ("P-384", "-tls1_3", True),
    ("X25519:P-256", "-tls1_2", True),
    ("X448", "-tls1_3", False), ("P-521", "-tls1_3", False), ("X448:P-521", "-tls1_2", False),
    ("ffdhe2048", "-tls1_3", False),
])
async def test_only_the_usual_curves_are_offered(data_dir: Path, groups: str, tls: str,
                                                 accepted: bool) -> None:
    data = DataDir(data_dir)
    ctx = server_context(data.tls_cert, data.tls_key)
    port = free_port()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port, ssl=ctx)
    try:
        result = await asyncio.to_thread(_client, port, data.ca_cert, "-groups", groups, tls)
    finally:
        server.close()
        await server.wait_closed()
    negotiated = "Verify return code: 0 (ok)" in result.stdout and \
        "Cipher is (NONE)" not in result.stdout and "Cipher is " in result.stdout
    assert negotiated == accepted, result.stdout[-800:] + result.stderr[-800:]


def test_the_server_certificate_lasts_at_most_365_days(data_dir: Path) -> None:
    cert = x509.load_pem_x509_certificate(DataDir(data_dir).tls_cert.read_bytes())
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= timedelta(days=365)
    ca = SchoolCA.load(data_dir / "ca")
    again, _ = ca.issue_server_cert(["gw.example"], now=datetime(2027, 4, 1, tzinfo=UTC))
    assert again.not_valid_after_utc - again.not_valid_before_utc == timedelta(days=365)


def test_tls_renew_replaces_the_certificate_and_keeps_the_old_pair(data_dir: Path) -> None:
    data = DataDir(data_dir)
    before = x509.load_pem_x509_certificate(data.tls_cert.read_bytes())
    out = subprocess.run([STAFFROOM, "tls", "renew", "--data", str(data_dir), "--json"],
                         capture_output=True, text=True, timeout=60, check=True)
    info = json.loads(out.stdout)
    after = x509.load_pem_x509_certificate(data.tls_cert.read_bytes())
    assert after.serial_number != before.serial_number
    assert info["serial"] == format(after.serial_number, "x")
    assert info["hostnames"] == ["localhost", "127.0.0.1"]
    assert (data.tls_cert.parent / "server.pem.old").read_bytes() == before.public_bytes(
        serialization.Encoding.PEM)
    assert oct(data.tls_key.stat().st_mode & 0o777) == "0o600"
    assert server_context(data.tls_cert, data.tls_key) is not None  # key matches cert
    bad = subprocess.run([sys.executable, "-m", "gateway.cli.main", "tls", "renew", "--data",
                          str(data_dir.parent / "nowhere")], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "not a Staffroom data directory" in bad.stderr
    assert "Traceback" not in bad.stderr
