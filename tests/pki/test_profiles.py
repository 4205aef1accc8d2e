"""certs/profiles.toml loads into validated profiles; a wrong file names file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from gateway.pki.profiles import ProfileError, load_profiles

SHIPPED = Path(__file__).resolve().parents[2] / "certs" / "profiles.toml"


def test_shipped_profiles() -> None:
    p = load_profiles(SHIPPED)
    root, server, teacher = p["root-ca"], p["gateway-server"], p["teacher-key"]
    assert root.ca and root.path_length == 0 and root.default_curve == "P-256"
    assert "P-384" in root.curves and root.validity_days == 3650
    assert root.key_usage_extension().key_cert_sign and root.key_usage_extension().crl_sign
    assert server.extended_key_usage_extension() == x509.ExtendedKeyUsage(
        [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH])
    assert teacher.valid_until == "school-year-end" and teacher.validity_days is None
    assert teacher.extended_key_usage == ("client_auth",)
    assert teacher.key_usage == frozenset({"digital_signature"})
    assert teacher.display_name_oid() == x509.NameOID.PSEUDONYM


def _write(tmp_path: Path, extra: str, teacher: str = 'valid_until = "school-year-end"') -> Path:
    usage = "" if "key_usage =" in teacher else 'key_usage = ["digital_signature"]'
    path = tmp_path / "profiles.toml"
    path.write_text(
        "[root-ca]\nca = true\npath_length = 0\nkey_usage = [\"key_cert_sign\", \"crl_sign\"]\n"
        "validity_days = 3650\n\n[gateway-server]\nvalidity_days = 397\n"
        "extended_key_usage = [\"server_auth\"]\n\n[teacher-key]\n"
        f"{usage}\n{teacher}\n{extra}\n")
    return path


@pytest.mark.parametrize("teacher,line,message", [
    ('validity_days = "365"', 13, "validity_days: expected a number of days"),
    ("validity_days = true", 13, "validity_days: expected a number of days"),
    ('valid_until = "end-of-june"', 13, "valid_until: expected \"school-year-end\""),
    ('curves = ["P-521"]\nvalid_until = "school-year-end"', 13, "curves: expected a list of"),
    ('key_usage = ["key_cert_sign"]\nvalid_until = "school-year-end"', 13,
     "key_usage: expected no CA usage on a leaf profile"),
    ("validity_days = 3650", 13, "expected at most 825 days"),
    ('colour = "red"\nvalid_until = "school-year-end"', 13, "colour: expected one of"),
])
def test_bad_profiles_name_file_line_and_key(tmp_path: Path, teacher: str, line: int,
                                             message: str) -> None:
    path = _write(tmp_path, "", teacher)
    with pytest.raises(ProfileError) as e:
        load_profiles(path)
    assert str(e.value).startswith(f"{path}:{line}: [teacher-key] ")
    assert message in str(e.value)


def test_unsafe_needs_the_explicit_flag(tmp_path: Path) -> None:
    path = _write(tmp_path, "unsafe = true", "validity_days = 3650")
    assert load_profiles(path)["teacher-key"].validity_days == 3650


def test_missing_profile(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text("[root-ca]\nca = true\nkey_usage = [\"key_cert_sign\"]\nvalidity_days = 1\n")
    with pytest.raises(ProfileError, match=r"the profile \[gateway-server\] is missing"):
        load_profiles(path)
