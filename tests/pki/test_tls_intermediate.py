"""TLS to Mozilla "intermediate": a real handshake offers only X25519, P-256 and P-384; the
server certificate lasts at most 365 days; `staffroom tls renew` replaces it (old pair kept) and
a running gateway serves the new one after SIGHUP (audited)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.datadir import DataDir
from gateway.pki.ca import SchoolCA
from gateway.tlsconfig import server_context
from tests.fixtures.gateway import STAFFROOM, Gateway, Persona, free_port


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


def _served_serial(port: int, ca: Path) -> int:
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_a_running_gateway_serves_the_renewed_certificate_after_sighup(
        gateway: Gateway, admin: Persona) -> None:
    before = _served_serial(gateway.port, gateway.ca)
    info = json.loads(subprocess.run(
        [STAFFROOM, "tls", "renew", "--data", str(gateway.data), "--json"],
        capture_output=True, text=True, timeout=60, check=True).stdout)
    assert _served_serial(gateway.port, gateway.ca) == before  # not before the signal
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGHUP)
    end = time.monotonic() + 10
    while _served_serial(gateway.port, gateway.ca) == before and time.monotonic() < end:
        time.sleep(0.1)
    assert format(_served_serial(gateway.port, gateway.ca), "x") == info["serial"]
    records = admin.run("audit", "export", "--json", "--kind", "tls.reload").json()
    assert [r["details"]["serial"] for r in records] == [info["serial"]]  # type: ignore
    # A login (its channel binding follows the new certificate) still works.
    again = Persona(gateway.data.parent / "home-again")
    again.home.mkdir()
    (again.home / "pw").write_text("admin-password-2026\n")
    code = pyotp.parse_uri(gateway.totp_uri).at(time.time() + 30)  # the fixture used now's
    again.run("login", "--gateway", gateway.url, "--ca", str(gateway.ca), "--user", "admin",
              "--password-file", str(again.home / "pw"), "--totp", code)
