"""Windows readiness checked from Debian: the wheel gate (pip against PyPI), the signing checker
on the real unsigned .pyd of python-pkcs11's win_amd64 wheel (osslsigncode, a test CA made here),
the per-user MSI built with wixl and read back with msiinfo, and the CI workflow linted."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fixtures.packaging import CACHE
from tests.fixtures.softhsm import make_token

ROOT = Path(__file__).resolve().parents[2]
CHECKER = [sys.executable, str(ROOT / "packaging" / "check_signatures.py")]
PYD_WHEEL = "python-pkcs11==0.10.1"


def _run(*cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=300, cwd=ROOT,
                          **kw)  # type: ignore[call-overload]


@pytest.mark.slow  # asks PyPI
def test_wheel_gate_passes_for_win_amd64_and_fails_for_win32() -> None:
    env = {**os.environ, "PIP": f"{sys.executable} -m pip"}
    ok = _run("bash", "packaging/wheel-gate", "win_amd64", "3.11", env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("wheel-gate: all ") and "win_amd64 wheels for Python 3.11" in \
        ok.stdout
    bad = _run("bash", "packaging/wheel-gate", "win32", "3.11", env=env)
    assert bad.returncode == 1
    assert bad.stderr.splitlines()[0] == (
        "wheel-gate: no win32 wheel for Python 3.11 of python-pkcs11==0.10.1: pick a version "
        "that publishes one, or drop win32 from the targets.")


@pytest.fixture(scope="session")
def windows_wheel() -> Path:
    """python-pkcs11's real win_amd64 wheel (downloaded once into CACHE)."""
    wheels = CACHE / "wheels"
    found = sorted(wheels.glob("python_pkcs11-0.10.1-cp311-cp311-win_amd64.whl"))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        done = _run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--platform", "win_amd64", "--python-version", "3.11",
                    "-d", str(wheels), PYD_WHEEL)
        assert done.returncode == 0, done.stderr
        found = sorted(wheels.glob("python_pkcs11-0.10.1-cp311-cp311-win_amd64.whl"))
    return found[0]


@pytest.fixture
def windows_pyd(windows_wheel: Path, tmp_path: Path) -> Path:
    """A folder holding the wheel's unsigned .pyd, as the frozen Windows bundle would."""
    with zipfile.ZipFile(windows_wheel) as whl:
        (name,) = [n for n in whl.namelist() if n.endswith(".pyd")]
        whl.extract(name, tmp_path / "payload")
    return tmp_path / "payload"


def _cert(subject: str, key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey,
          issuer: x509.Name,
          issuer_key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(issuer)
         .public_key(key if isinstance(key, ec.EllipticCurvePublicKey) else key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(hours=1))
         .not_valid_after(now + dt.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                          False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                          False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _test_ca(d: Path, name: str) -> tuple[Path, Path, Path]:
    """(CA cert, signer cert chain, signer key) as PEM files: a board CA and its code signer."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Test Root")])
    ca = _cert(f"{name} Test Root", ca_key, ca_name, ca_key, ca=True)
    leaf = _cert(f"{name} Code Signing", key, ca_name, ca_key, ca=False)
    d.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "signer.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (d / "signer.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return d / "ca.pem", d / "signer.pem", d / "signer.key"


def test_signing_checker_on_the_real_windows_pyd(windows_pyd: Path, tmp_path: Path) -> None:
    (pyd,) = windows_pyd.rglob("*.pyd")
    assert pyd.read_bytes()[:2] == b"MZ"
    ca, chain, key = _test_ca(tmp_path / "board", "Board")
    (tmp_path / "notes.txt").write_text("not a PE file\n")
    refused = _run(*CHECKER, str(windows_pyd), "--ca", str(ca))
    assert refused.returncode == 1
    rel = pyd.relative_to(windows_pyd)
    assert refused.stdout == f"REFUSED {rel}: not signed\n"
    assert "1 of 1 Windows files are not validly signed" in refused.stderr

    signed = pyd.with_suffix(".signed")
    done = _run("osslsigncode", "sign", "-certs", str(chain), "-key", str(key), "-h", "sha256",
                "-n", "Staffroom Agent", "-in", str(pyd), "-out", str(signed))
    assert done.returncode == 0, done.stdout + done.stderr
    signed.replace(pyd)
    ok = _run(*CHECKER, str(windows_pyd), "--ca", str(ca))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == "All 1 Windows files are signed and verify.\n"

    other_ca, _, _ = _test_ca(tmp_path / "other", "Other")
    assert _run(*CHECKER, str(windows_pyd), "--ca", str(other_ca)).returncode == 1

    data = bytearray(pyd.read_bytes())
    data[len(data) // 3] ^= 0x01  # one flipped bit inside the signed image
    pyd.write_bytes(bytes(data))
    flipped = _run(*CHECKER, str(windows_pyd), "--ca", str(ca))
    assert flipped.returncode == 1
    assert flipped.stdout.startswith(f"REFUSED {rel}: signature does not verify")


def test_signing_with_the_key_on_a_pkcs11_token(windows_pyd: Path, tmp_path: Path) -> None:
    """packaging/sign-payload as the board runs it: the code-signing key never leaves the token
    (SoftHSM2 here, through OpenSSL's pkcs11 engine); the checker then accepts the payload."""
    token = make_token(tmp_path / "hsm", label="board-codesign")
    token.pkcs11_tool("--keypairgen", "--key-type", "EC:prime256v1", "--id", "01", "--label",
                      "codesign")
    pub_der = tmp_path / "pub.der"
    token.pkcs11_tool("--read-object", "--type", "pubkey", "--id", "01", "-o", str(pub_der),
                      login=False)
    public = serialization.load_der_public_key(pub_der.read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Board Test Root")])
    ca = _cert("Board Test Root", ca_key, ca_name, ca_key, ca=True)
    leaf = _cert("Board Code Signing", public, ca_name, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "chain.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    env = {**token.env, "SIGN_PKCS11_MODULE": token.module,
           "SIGN_KEY": "pkcs11:token=board-codesign;object=codesign;type=private",
           "SIGN_CERTS": str(tmp_path / "chain.pem"),
           "SIGN_PIN_FILE": str(token.pin_file(tmp_path))}
    assert _run(*CHECKER, str(windows_pyd), "--ca", str(tmp_path / "ca.pem")).returncode == 1
    signed = _run("bash", "packaging/sign-payload", str(windows_pyd), env=env)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert signed.stdout == "sign-payload: signed 1 file(s).\n"
    ok = _run(*CHECKER, str(windows_pyd), "--ca", str(tmp_path / "ca.pem"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong_pin = {**env, "SIGN_PIN_FILE": str(token.pin_file(tmp_path, "00000000"))}
    assert _run("bash", "packaging/sign-payload", str(windows_pyd), env=wrong_pin).returncode != 0


def test_signing_checker_refuses_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("MZ but not a PE image")
    out = _run(*CHECKER, str(tmp_path))
    assert out.returncode == 1 and "no EXE, DLL, PYD or MSI file" in out.stderr


def _table(msi: Path, name: str) -> list[list[str]]:
    out = _run("msiinfo", "export", str(msi), name)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines()[3:]]


@pytest.mark.slow  # the frozen build (once per session)
def test_msi_builds_with_wixl_as_a_per_user_install(agent_bundle: Path, tmp_path: Path) -> None:
    config = tmp_path / "staffroom-agent.toml"
    config.write_text('gateway = "https://gw.kita.example.jp:8443"\nca = "ca.pem"\n'
                      'module = "%SystemRoot%\\\\System32\\\\opensc-pkcs11.dll"\n')
    ca, _, _ = _test_ca(tmp_path / "school", "School")
    msi = tmp_path / "staffroom-agent.msi"
    built = _run("bash", "packaging/build-msi", str(agent_bundle), str(config), str(ca), str(msi))
    assert built.returncode == 0, built.stdout + built.stderr
    info = _run("msiinfo", "suminfo", str(msi)).stdout
    # Word Count: 2 compressed + 8 "elevated privileges are not required" (no UAC prompt).
    word_count = int(next(li for li in info.splitlines() if li.startswith("Source:")).split()[1])
    assert word_count & 8 and word_count & 2, info
    assert "Template: x64;1033" in info
    props = dict(row[:2] for row in _table(msi, "Property"))
    assert "ALLUSERS" not in props and "MSIINSTALLPERUSER" not in props
    assert props["ProductName"] == "Staffroom Agent"
    assert props["UpgradeCode"] == "{4589F31F-6D3C-4C4C-8C1C-1DE15E7486B1}"
    dirs = {row[0]: (row[1], row[2]) for row in _table(msi, "Directory")}
    assert dirs["INSTALLDIR"] == ("ProgramsFolder", "Staffroom Agent")
    assert dirs["ProgramsFolder"] == ("LocalAppDataFolder", "Programs")
    upgrades = _table(msi, "Upgrade")  # MajorUpgrade: detect older, refuse newer
    assert {row[-1] for row in upgrades} == {"WIX_UPGRADE_DETECTED", "WIX_DOWNGRADE_DETECTED"}
    actions = [row[0] for row in _table(msi, "InstallExecuteSequence")]
    assert "RemoveExistingProducts" in actions
    registry = _table(msi, "Registry")
    assert registry and all(row[1] == "1" for row in registry)  # 1 = HKCU only
    shortcuts = {row[2]: (row[4], row[5]) for row in _table(msi, "Shortcut")}
    assert shortcuts["Staffroom"] == ("[INSTALLDIR]staffroom-agent.exe", "connect")
    files = {row[2].split("|")[-1] for row in _table(msi, "File")}
    assert {"staffroom-agent.toml", "ca.pem", "staffroom-agent", "index.html"} <= files
    out = tmp_path / "extracted"
    done = _run("msiextract", "-C", str(out), str(msi))
    assert done.returncode == 0, done.stderr
    (got,) = out.rglob("staffroom-agent.toml")
    assert got.read_text() == config.read_text()
    assert "LocalAppData" in str(got) or "Staffroom Agent" in str(got)


def test_windows_workflow_lints(tmp_path: Path) -> None:
    done = _run("bash", "packaging/lint-workflow", ".github/workflows/windows-agent.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no problems" in done.stdout
    broken = tmp_path / "broken.yml"
    text = (ROOT / ".github/workflows/windows-agent.yml").read_text()
    broken.write_text(text.replace("runs-on: windows-latest", "runs-on: windows-latest\n"
                                   "    timeout-minutes: soon", 1))
    bad = _run("bash", "packaging/lint-workflow", str(broken))
    assert bad.returncode == 1 and "timeout-minutes" in bad.stdout
