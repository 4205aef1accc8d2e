"""The CRL: revoked serials with RFC 5280 reason codes, a CRL number, signed by the CA."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from gateway.pki.ca import CAError, create_ca
from gateway.pki.crl import RevocationReason, Revoked
from tests.pki.helpers import openssl, spki, write_pem

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_crl_lists_revoked_serials_with_reasons(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "Kita CA", now=NOW - timedelta(days=1))
    victim = ca.issue_client_cert(spki(), user_id="t.sato", name="T", school="s", now=NOW)
    crl = ca.build_crl([
        Revoked(victim.serial_number, NOW, RevocationReason.keyCompromise),
        Revoked(0x1234, NOW - timedelta(days=2), "superseded"),
        Revoked(0x5678, NOW, "affiliationChanged"),
        Revoked(0x9ABC, NOW, "cessationOfOperation"),
        Revoked(0xDEF0, NOW),
    ], now=NOW, next_update=NOW + timedelta(days=7), crl_number=42)
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    entry = crl.get_revoked_certificate_by_serial_number(victim.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.key_compromise
    unspecified = crl.get_revoked_certificate_by_serial_number(0xDEF0)
    assert unspecified is not None and len(unspecified.extensions) == 0  # RFC 5280 SHOULD

    path = write_pem(tmp_path / "crl.pem", crl)
    text = openssl("crl", "-in", str(path), "-noout", "-text").stdout
    serial_hex = victim.serial_number.to_bytes((victim.serial_number.bit_length() + 7) // 8,
                                               "big").hex().upper()
    block = text[text.index(f"Serial Number: {serial_hex}"):]
    assert block.split("Serial Number:")[1].find("Key Compromise") > 0
    for reason in ("Superseded", "Affiliation Changed", "Cessation Of Operation"):
        assert reason in text
    assert re.search(r"X509v3 CRL Number: *\n *42\n", text), text
    verified = openssl("crl", "-in", str(path), "-noout", "-CAfile",
                       str(tmp_path / "ca.pem"), check=False)
    assert verified.returncode == 0 and "verify OK" in verified.stderr + verified.stdout


def test_openssl_verify_refuses_the_revoked_certificate(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "Kita CA", now=NOW - timedelta(days=1))
    good = ca.issue_client_cert(spki(), user_id="a", name="A", school="s", now=NOW)
    bad = ca.issue_client_cert(spki(), user_id="b", name="B", school="s", now=NOW)
    crl = write_pem(tmp_path / "crl.pem", ca.build_crl(
        [Revoked(bad.serial_number, NOW, "keyCompromise")], now=NOW,
        next_update=NOW + timedelta(days=7)))
    at = str(int((NOW + timedelta(hours=1)).timestamp()))
    for cert, expect_ok in ((good, True), (bad, False)):
        pem = write_pem(tmp_path / "c.pem", cert)
        out = openssl("verify", "-crl_check", "-CRLfile", str(crl), "-CAfile",
                      str(tmp_path / "ca.pem"), "-purpose", "sslclient", "-attime", at,
                      str(pem), check=False)
        assert (out.returncode == 0) == expect_ok, out.stdout + out.stderr
        if not expect_ok:
            assert "certificate revoked" in out.stdout + out.stderr


def test_default_crl_number_grows_with_time(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA", now=NOW)
    first = ca.build_crl([], now=NOW, next_update=NOW + timedelta(days=1))
    later = ca.build_crl([], now=NOW + timedelta(hours=1),
                         next_update=NOW + timedelta(days=1))
    numbers = [c.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
               for c in (first, later)]
    assert numbers[0] < numbers[1]


def test_reason_names_and_refusals(tmp_path: Path) -> None:
    assert RevocationReason.parse("keyCompromise") == 1
    assert RevocationReason.parse(5) is RevocationReason.cessationOfOperation
    assert RevocationReason.removeFromCRL == 8
    with pytest.raises(ValueError, match="not an RFC 5280 revocation reason"):
        RevocationReason.parse("lostIt")
    ca = create_ca(tmp_path, "CA", now=NOW)
    with pytest.raises(CAError, match="next update must be after"):
        ca.build_crl([], now=NOW, next_update=NOW)
