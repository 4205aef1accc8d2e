"""Keys generated ON a real SoftHSM2 token, certified by the school CA, stored next to the key;
checked with pkcs11-tool, openssl and cryptography."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11

from agent.token import Token, TokenError, open_token, read_certificates
from gateway.pki.ca import SchoolCA, create_ca
from gateway.pki.crl import Revoked
from tests.fixtures.softhsm import SoftToken

CRL_URL = "https://gw.kita.example:8443/crl/school-ca.crl"


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def issue(token: Token, ca: SchoolCA, user: str, *, now: datetime | None = None,
          not_after: datetime | None = None) -> tuple[bytes, x509.Certificate]:
    key_id, spki = token.generate_key(f"staffroom {user}")
    cert = ca.issue_client_cert(spki, user_id=user, name="佐藤 花子", school="kita-es",
                                now=now or datetime.now(UTC), not_after=not_after,
                                crl_url=CRL_URL)
    token.store_certificate(key_id, der(cert), f"staffroom {user}")
    return key_id, cert


def serial_hex(serial: int) -> str:
    """How pkcs11-tool and openssl print a serial: whole bytes, no leading zero byte."""
    return serial.to_bytes((serial.bit_length() + 7) // 8, "big").hex().upper()


def objects(listing: str) -> list[str]:
    """pkcs11-tool --list-objects output split into one block per object."""
    blocks: list[str] = []
    for line in listing.splitlines():
        if line and not line.startswith(" "):
            blocks.append(line)
        elif blocks:
            blocks[-1] += "\n" + line
    return blocks


def test_issue_on_token_store_and_check_with_real_tools(softhsm_token: SoftToken,
                                                         tmp_path: Path) -> None:
    t = softhsm_token
    ca = create_ca(tmp_path / "ca", "Kita Board Staffroom CA")
    with open_token(t.module, token_label=t.label, pin=t.pin) as token:
        assert token.label == t.label and token.slot == t.slot
        key_id, cert = issue(token, ca, "t.sato")
        assert len(key_id) == 16

        # The token signs; the certificate's public key verifies (SHA-256 hashed in Python).
        message = b"login transcript \x00 nonce"
        signature = token.sign(key_id, message)
        public = cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        with pytest.raises(InvalidSignature):
            public.verify(signature, message + b"!", ec.ECDSA(hashes.SHA256()))
        assert token.find_identity() == (key_id, cert)

    listing = t.pkcs11_tool("--list-objects")
    blocks = objects(listing)
    [cert_block] = [b for b in blocks if b.startswith("Certificate Object; type = X.509 cert")]
    [private] = [b for b in blocks if b.startswith("Private Key Object; EC")]
    [public_block] = [b for b in blocks if b.startswith("Public Key Object; EC")]
    for block in (cert_block, private, public_block):
        assert f"  ID:         {key_id.hex()}" in block.splitlines()
        assert "  label:      staffroom t.sato" in block.splitlines()
    assert "  Usage:      sign" in private.splitlines()
    assert "  Access:     sensitive, always sensitive, never extractable, local" in \
        private.splitlines()
    assert f"  serial:     {serial_hex(cert.serial_number)}" in cert_block.splitlines()
    assert "DN: CN=t.sato, O=kita-es" in cert_block

    # The certificate read back from the token passes openssl as a TLS client certificate.
    (tmp_path / "cert.der").write_bytes(b"")
    subprocess.run(["pkcs11-tool", "--module", t.module, "--token-label", t.label,
                    "--read-object", "--type", "cert", "--id", key_id.hex(),
                    "--output-file", str(tmp_path / "cert.der")], env=t.env, check=True,
                   capture_output=True, timeout=30)
    stored = x509.load_der_x509_certificate((tmp_path / "cert.der").read_bytes())
    assert stored == cert
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ok = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca" / "ca.pem"),
                         "-purpose", "sslclient", str(tmp_path / "cert.pem")],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stdout.strip().endswith(": OK"), ok.stderr
    end = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "cert.pem"), "-noout",
                          "-enddate"], capture_output=True, text=True, check=True).stdout
    assert end.startswith("notAfter=Mar 31 14:59:59 ")  # 31 March 23:59:59 in Japan
    jst = cert.not_valid_after_utc.astimezone(ca_jst())
    assert (jst.month, jst.day, jst.hour, jst.minute, jst.second) == (3, 31, 23, 59, 59)

    # The CRL lists the serial with its reason.
    crl = ca.build_crl([Revoked(cert.serial_number, datetime.now(UTC), "keyCompromise")],
                       now=datetime.now(UTC), next_update=datetime.now(UTC) + timedelta(days=7))
    (tmp_path / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    text = subprocess.run(["openssl", "crl", "-in", str(tmp_path / "crl.pem"), "-noout",
                           "-text"], capture_output=True, text=True, check=True).stdout
    assert f"Serial Number: {serial_hex(cert.serial_number)}" in text
    assert "Key Compromise" in text


def ca_jst() -> object:
    from gateway.pki.names import JST

    return JST


def test_private_key_value_cannot_be_read_or_made_extractable(softhsm_token: SoftToken) -> None:
    t = softhsm_token
    with open_token(t.module, token_label=t.label, pin=t.pin) as token:
        key_id, _ = token.generate_key("staffroom x")
        key = token.session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
        assert key[Attribute.SENSITIVE] and key[Attribute.NEVER_EXTRACTABLE]
        assert key[Attribute.TOKEN] and key[Attribute.PRIVATE] and key[Attribute.SIGN]
        assert not key[Attribute.EXTRACTABLE] and not key[Attribute.DERIVE]
        with pytest.raises(p11.AttributeSensitive):
            key[Attribute.VALUE]
        with pytest.raises(p11.PKCS11Error):
            key[Attribute.EXTRACTABLE] = True


def test_find_identity_picks_the_newest_valid_and_delete_key(softhsm_token: SoftToken,
                                                            tmp_path: Path) -> None:
    t = softhsm_token
    ca = create_ca(tmp_path / "ca", "CA")
    now = datetime.now(UTC)
    with open_token(t.module, token_label=t.label, pin=t.pin) as token:
        with pytest.raises(TokenError, match=r"^This token holds no Staffroom key"):
            token.find_identity()
        old_id, _ = issue(token, ca, "t.sato", now=now - timedelta(days=20),
                          not_after=now - timedelta(days=1))
        with pytest.raises(TokenError, match=r"^The key on this token expired on "):
            token.find_identity()
        older_id, _ = issue(token, ca, "t.sato", now=now - timedelta(days=10))
        new_id, new_cert = issue(token, ca, "t.sato", now=now - timedelta(days=1))
        orphan_id, _ = token.generate_key("staffroom failed issue")  # key without certificate
        assert token.find_identity() == (new_id, new_cert)
        assert len(token.certificates()) == 3

        token.delete_key(new_id)
        assert token.find_identity()[0] == older_id
        token.delete_key(orphan_id)
        with pytest.raises(TokenError, match=r"^The key is no longer on the token"):
            token.sign(new_id, b"x")
    listing = t.pkcs11_tool("--list-objects")
    assert new_id.hex() not in listing and orphan_id.hex() not in listing
    assert old_id.hex() in listing
    # Certificates are public: readable without the PIN (agent check).
    assert len(read_certificates(t.module, token_label=t.label)) == 2


def test_store_refuses_a_certificate_for_another_key(softhsm_token: SoftToken,
                                                     tmp_path: Path) -> None:
    t = softhsm_token
    ca = create_ca(tmp_path / "ca", "CA")
    with open_token(t.module, token_label=t.label, pin=t.pin) as token:
        key_id, _ = token.generate_key("a")
        other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        cert = ca.issue_client_cert(other, user_id="t", name="T", school="s",
                                    now=datetime.now(UTC))
        with pytest.raises(TokenError, match=r"^This certificate is for another key"):
            token.store_certificate(key_id, der(cert), "a")
        assert token.certificates() == []


def test_slot_number_and_the_only_token(softhsm_token: SoftToken) -> None:
    t = softhsm_token
    with open_token(t.module, slot=t.slot, pin=t.pin) as token:
        assert token.label == t.label
    with open_token(t.module, pin=t.pin) as token:  # the only initialised token
        assert token.slot == t.slot
