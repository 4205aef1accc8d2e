"""The school CA: creation, loading, server and client certificates, login-certificate checks."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from gateway.pki.ca import CAError, SchoolCA, create_ca, school_year_end
from gateway.pki.verify import CertificateRejected, verify_client_cert
from tests.pki.helpers import openssl, spki, write_pem

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CRL_URL = "https://gw.kita.example:8443/crl/school-ca.crl"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_writes_key_0600_and_refuses_to_overwrite(tmp_path: Path) -> None:
    ca = create_ca(tmp_path / "ca", "Kita Board Staffroom CA", now=NOW)
    assert mode(tmp_path / "ca" / "ca.key") == 0o600
    assert mode(tmp_path / "ca") == 0o700
    before = (tmp_path / "ca" / "ca.pem").read_bytes()
    with pytest.raises(CAError, match=r"A CA already exists .* refusing to overwrite"):
        create_ca(tmp_path / "ca", "Other CA")
    assert (tmp_path / "ca" / "ca.pem").read_bytes() == before
    cert = ca.certificate
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value == \
        x509.BasicConstraints(ca=True, path_length=0)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    assert cert.not_valid_after_utc - NOW == timedelta(days=3650)
    text = openssl("x509", "-in", str(tmp_path / "ca" / "ca.pem"), "-noout", "-text").stdout
    assert "CA:TRUE, pathlen:0" in text and "Certificate Sign, CRL Sign" in text
    assert "prime256v1" in text


def test_an_existing_key_alone_also_blocks_creation(tmp_path: Path) -> None:
    (tmp_path / "ca.key").write_bytes(b"precious")
    with pytest.raises(CAError, match="refusing to overwrite"):
        create_ca(tmp_path, "CA")
    assert (tmp_path / "ca.key").read_bytes() == b"precious"


def test_passphrase_protected_p384_ca(tmp_path: Path) -> None:
    create_ca(tmp_path, "CA", curve="P-384", passphrase=b"correct horse battery")
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "ca.key").read_bytes()
    ca = SchoolCA.load(tmp_path, b"correct horse battery")
    key = ca.certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
    assert isinstance(ca.certificate.signature_hash_algorithm, hashes.SHA384)
    with pytest.raises(CAError, match=r"^The CA key's passphrase is wrong"):
        SchoolCA.load(tmp_path, b"wrong")
    with pytest.raises(CAError, match=r"^The CA key is protected by a passphrase"):
        SchoolCA.load(tmp_path)


def test_load_refusals(tmp_path: Path) -> None:
    with pytest.raises(CAError, match="No CA was found"):
        SchoolCA.load(tmp_path)
    create_ca(tmp_path, "CA")
    with pytest.raises(CAError, match="not encrypted, but a passphrase was given"):
        SchoolCA.load(tmp_path, b"x")
    (tmp_path / "ca.key").chmod(0o644)
    with pytest.raises(CAError, match="readable by other accounts"):
        SchoolCA.load(tmp_path)
    with pytest.raises(CAError, match="curve must be one of P-256, P-384"):
        create_ca(tmp_path / "b", "CA", curve="P-521")
    with pytest.raises(CAError, match="passphrase is empty"):
        create_ca(tmp_path / "c", "CA", passphrase=b"")


def test_server_certificate_sans_and_openssl(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA", now=NOW)
    cert, key = ca.issue_server_cert(["gw.kita.example", "127.0.0.1", "::1", "GW.kita.example"],
                                     now=NOW)
    assert cert.public_key() == key.public_key()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw.kita.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=365)
    pem = write_pem(tmp_path / "server.pem", cert)
    ok = openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), "-purpose", "sslserver",
                 "-attime", str(int(NOW.timestamp())), str(pem), check=False)
    assert ok.returncode == 0, ok.stderr
    wrong = openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), "-purpose", "sslclient",
                    "-attime", str(int(NOW.timestamp())), str(pem), check=False)
    assert wrong.returncode != 0  # a server certificate is no login key
    text = openssl("x509", "-in", str(pem), "-noout", "-ext", "subjectAltName").stdout
    assert "DNS:gw.kita.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1" in text


@pytest.mark.parametrize("names,message", [
    ([], "at least one hostname"),
    (["*.kita.example"], "neither a DNS name nor an IP address"),
    (["gw kita"], "neither a DNS name nor an IP address"),
    (["-gw.example"], "neither a DNS name nor an IP address"),
    ([f"h{i}.example" for i in range(40)], "At most 32 hostnames"),
])
def test_server_certificate_refuses_bad_names(tmp_path: Path, names: list[str],
                                              message: str) -> None:
    ca = create_ca(tmp_path, "CA")
    with pytest.raises(CAError, match=message):
        ca.issue_server_cert(names)


JST = timezone(timedelta(hours=9))


@pytest.mark.parametrize("issued,end", [
    (datetime(2026, 4, 1, 0, 0, tzinfo=JST), datetime(2027, 3, 31, 23, 59, 59, tzinfo=JST)),
    (datetime(2026, 11, 25, 9, 0, tzinfo=UTC), datetime(2027, 3, 31, 23, 59, 59, tzinfo=JST)),
    (datetime(2027, 3, 31, 23, 59, 0, tzinfo=JST), datetime(2027, 3, 31, 23, 59, 59, tzinfo=JST)),
    # 31 March 15:00 UTC is already 1 April in Japan: the next school year.
    (datetime(2027, 3, 31, 15, 0, tzinfo=UTC), datetime(2028, 3, 31, 23, 59, 59, tzinfo=JST)),
    (datetime(2027, 3, 31, 14, 59, 59, tzinfo=UTC), datetime(2027, 3, 31, 23, 59, 59, tzinfo=JST)),
])
def test_school_year_ends_31_march_japan_time(issued: datetime, end: datetime) -> None:
    assert school_year_end(issued) == end
    assert school_year_end(issued).tzinfo == UTC


def test_school_year_end_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        school_year_end(datetime(2026, 5, 1))  # naive on purpose


def test_client_certificate_profile(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA", now=NOW)
    cert = ca.issue_client_cert(spki(), user_id="t.sato", name="佐藤 花子", school="kita-es",
                                now=NOW, crl_url=CRL_URL)
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "t.sato"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "kita-es"
    assert subject.get_attributes_for_oid(NameOID.PSEUDONYM)[0].value == "佐藤 花子"
    assert cert.not_valid_after_utc == datetime(2027, 3, 31, 14, 59, 59, tzinfo=UTC)
    ext = cert.extensions
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = ext.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert not ext.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    assert ext.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest == \
        x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest  # type: ignore
    points = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name == [x509.UniformResourceIdentifier(CRL_URL)]
    verify_client_cert(cert, ca.certificate, now=NOW)


def test_serials_are_random_positive_and_at_most_159_bits(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA", now=NOW)
    serials = {ca.issue_client_cert(spki(), user_id="t", name="T", school="s",
                                    now=NOW).serial_number for _ in range(20)}
    assert len(serials) == 20
    assert all(0 < s < 2**159 for s in serials)
    assert max(s.bit_length() for s in serials) > 150  # random, not counting


def test_policy_days_p384_keys_and_bounds(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA", now=NOW)
    cert = ca.issue_client_cert(spki(ec.SECP384R1()), user_id="t", name="", school=None,
                                now=NOW, not_after=NOW + timedelta(days=30))
    assert cert.not_valid_after_utc == NOW + timedelta(days=30)
    assert cert.subject.rfc4514_string() == "CN=t"
    with pytest.raises(CAError, match="at most 400 days"):
        ca.issue_client_cert(spki(), user_id="t", name="T", school="s", now=NOW,
                             not_after=NOW + timedelta(days=800))
    with pytest.raises(CAError, match="expire before it is issued"):
        ca.issue_client_cert(spki(), user_id="t", name="T", school="s", now=NOW,
                             not_after=NOW - timedelta(days=1))


@pytest.mark.parametrize("kwargs,message", [
    ({"user_id": ""}, "user id is empty"),
    ({"user_id": "x" * 65}, "user id is longer than 64"),
    ({"name": "a\nb"}, "display name contains control characters"),
    ({"school": "s" * 65}, "school is longer than 64"),
    ({"crl_url": "file:///etc/passwd"}, "CRL URL must be an http"),
])
def test_client_certificate_refuses_bad_fields(tmp_path: Path, kwargs: dict[str, str],
                                               message: str) -> None:
    ca = create_ca(tmp_path, "CA", now=NOW)
    args = {"user_id": "t", "name": "T", "school": "s", **kwargs}
    with pytest.raises(CAError, match=message):
        ca.issue_client_cert(spki(), now=NOW, **args)  # type: ignore[arg-type]


def test_client_certificate_refuses_other_keys(tmp_path: Path) -> None:
    ca = create_ca(tmp_path, "CA", now=NOW)
    with pytest.raises(CAError, match="not a valid SubjectPublicKeyInfo"):
        ca.issue_client_cert(b"\x30\x03junk", user_id="t", name="T", school="s", now=NOW)
    with pytest.raises(CAError, match="Only EC P-256 or P-384 keys"):
        ca.issue_client_cert(spki(ec.SECP521R1()), user_id="t", name="T", school="s", now=NOW)


def test_login_certificate_rejections(tmp_path: Path) -> None:
    ca = create_ca(tmp_path / "a", "CA", now=NOW)
    impostor = create_ca(tmp_path / "b", "CA", now=NOW)  # same name, another key
    cert = ca.issue_client_cert(spki(), user_id="t", name="T", school="s", now=NOW)

    def code(c: x509.Certificate, ca_cert: x509.Certificate, now: datetime = NOW) -> str:
        with pytest.raises(CertificateRejected) as e:
            verify_client_cert(c, ca_cert, now=now)
        assert e.value.sentence == str(e.value) and e.value.sentence.endswith(".")
        return e.value.code

    assert code(cert, impostor.certificate) == "cert-untrusted"
    assert code(impostor.issue_client_cert(spki(), user_id="t", name="T", school="s", now=NOW),
                ca.certificate) == "cert-untrusted"
    assert code(cert, ca.certificate, school_year_end(NOW) + timedelta(seconds=1)) == \
        "cert-expired"
    assert code(cert, ca.certificate, NOW - timedelta(hours=1)) == "cert-not-yet-valid"
    server, _ = ca.issue_server_cert(["gw"], now=NOW)
    assert code(server, ca.certificate) == "cert-wrong-usage"
    assert code(ca.certificate, ca.certificate) == "cert-wrong-usage"  # the CA itself


def test_login_certificate_without_client_eku_is_refused(tmp_path: Path) -> None:
    """A certificate the CA key signed by hand, without the profile: still refused."""
    create_ca(tmp_path, "CA", now=NOW)
    ca_key = serialization.load_pem_private_key((tmp_path / "ca.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    bare = (x509.CertificateBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "t")])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(7).not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    with pytest.raises(CertificateRejected) as e:
        verify_client_cert(bare, ca_cert, now=NOW + timedelta(hours=1))
    assert e.value.code == "cert-wrong-usage"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.sampled_from([UTC, JST, timezone(timedelta(hours=-5))])))
def test_school_year_end_property(now: datetime) -> None:
    end = school_year_end(now).astimezone(JST)
    assert (end.month, end.day, end.hour, end.minute, end.second) == (3, 31, 23, 59, 59)
    assert timedelta(0) <= end - now <= timedelta(days=366)
    # The school year began on the 1 April after the previous end: now is inside it.
    assert end.replace(year=end.year - 1) < now
