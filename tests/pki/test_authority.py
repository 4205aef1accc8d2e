"""The school CA: creation, loading, issued certificates, CRL and client-certificate checks."""

from __future__ import annotations

import hashlib
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.pki.authority import (
    CAError,
    CertificateRejected,
    Revoked,
    SchoolCA,
    create_ca,
    school_year_end,
    verify_client_cert,
)
from gateway.wire.tlsbinding import tls_server_end_point

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def spki() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def test_ca_files_modes_and_no_overwrite(tmp_path: Path) -> None:
    create_ca(tmp_path / "ca", "Test CA")
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600
    before = (tmp_path / "ca" / "ca.pem").read_bytes()
    with pytest.raises(CAError, match="refusing to overwrite"):
        create_ca(tmp_path / "ca", "Other CA")
    assert (tmp_path / "ca" / "ca.pem").read_bytes() == before


def test_passphrase_protected_ca(tmp_path: Path) -> None:
    create_ca(tmp_path, "CA", curve="P-384", passphrase=b"correct horse")
    assert SchoolCA.load(tmp_path, b"correct horse").certificate.public_key().curve.name == \
        "secp384r1"  # type: ignore[union-attr]
    with pytest.raises(CAError, match="passphrase is wrong"):
        SchoolCA.load(tmp_path, b"wrong")
    with pytest.raises(CAError, match="protected by a passphrase"):
        SchoolCA.load(tmp_path)


def test_server_certificate_names_and_openssl(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA")
    cert, _key = ca.issue_server_cert(["gw.school.example", "127.0.0.1"])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw.school.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    pem = tmp_path / "server.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), "-purpose",
                          "sslserver", str(pem)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    der = subprocess.run(["openssl", "x509", "-in", str(pem), "-outform", "der"],
                         capture_output=True, check=True).stdout
    assert tls_server_end_point(cert) == hashlib.sha256(der).digest()


@pytest.mark.parametrize("issued,end", [
    (datetime(2026, 4, 1, 0, 0, tzinfo=UTC), datetime(2027, 3, 31, 14, 59, 59, tzinfo=UTC)),
    (datetime(2027, 3, 31, 10, 0, tzinfo=UTC), datetime(2027, 3, 31, 14, 59, 59, tzinfo=UTC)),
    # 31 March 16:00 UTC is already 1 April in Japan: the next school year.
    (datetime(2027, 3, 31, 16, 0, tzinfo=UTC), datetime(2028, 3, 31, 14, 59, 59, tzinfo=UTC)),
])
def test_school_year_end_is_31_march_japan_time(issued: datetime, end: datetime) -> None:
    assert school_year_end(issued) == end


def test_client_certificate_profile(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA", now=NOW)
    cert = ca.issue_client_cert(spki(), user_id="t.sato", name="佐藤", school="kita-es",
                                now=NOW, crl_url="https://gw/crl/school-ca.crl")
    assert cert.subject.rfc4514_string() == "O=kita-es,CN=t.sato"
    assert cert.not_valid_after_utc == school_year_end(NOW)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert cert.serial_number.bit_length() <= 159
    verify_client_cert(cert, ca.certificate, now=NOW)


def test_client_certificate_rejections(tmp_path: Path) -> None:
    ca = create_ca(tmp_path / "a", "CA", now=NOW)
    other = create_ca(tmp_path / "b", "CA", now=NOW)  # same name, other key
    cert = ca.issue_client_cert(spki(), user_id="t", name="T", school="s", now=NOW)
    with pytest.raises(CertificateRejected) as e:
        verify_client_cert(cert, other.certificate, now=NOW)
    assert e.value.code == "cert-untrusted"
    with pytest.raises(CertificateRejected) as e:
        verify_client_cert(cert, ca.certificate, now=school_year_end(NOW) + timedelta(seconds=1))
    assert e.value.code == "cert-expired" and "expired" in e.value.sentence
    server, _ = ca.issue_server_cert(["gw"], now=NOW)
    with pytest.raises(CertificateRejected) as e:
        verify_client_cert(server, ca.certificate, now=NOW)
    assert e.value.code == "cert-wrong-usage"


def test_crl_lists_revoked_serials_with_reasons(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA", now=NOW)
    crl = ca.build_crl([Revoked(0xABCDEF, NOW, "keyCompromise"),
                        Revoked(0x1234, NOW, "superseded")], now=NOW,
                       next_update=NOW + timedelta(days=7), crl_number=3)
    path = tmp_path / "crl.pem"
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    text = subprocess.run(["openssl", "crl", "-in", str(path), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "ABCDEF" in text and "Key Compromise" in text and "Superseded" in text
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
