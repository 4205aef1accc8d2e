"""Issue 3 end to end, with real parts: init → gateway → admin login with a real TOTP code →
a CIO and a teacher → the CIO issues the teacher a key on a SoftHSM2 token → pkcs11-tool and
openssl accept it → revoke → the CRL lists it → audit verify passes, and fails after tampering."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pyotp

from tests.fixtures.gateway import STAFFROOM as STAFFROOM_BIN
from tests.fixtures.gateway import Gateway, Persona

PASSWORD = "cio-password-2026"


def _add(admin: Persona, tmp: Path, user: str, school: str | None, role: str,
         name: str = "名前") -> dict[str, object]:
    pw = tmp / f"{user}.initial"
    pw.write_text(PASSWORD + "\n")
    args = ["users", "add", user, "--name", name, "--role", role, "--password-file", str(pw),
            "--json"]
    if school:
        args += ["--school", school]
    return admin.run(*args).json()  # type: ignore[return-value]


def _pin_file(tmp: Path, pin: str) -> str:
    path = tmp / "pin"
    path.write_text(pin + "\n")
    path.chmod(0o600)
    return str(path)


def test_cio_issues_and_revokes_a_key_and_the_log_proves_it(
    gateway: Gateway, admin: Persona, tmp_path: Path, softhsm_token: object
) -> None:
    token = softhsm_token
    cio = _add(admin, tmp_path, "cio.kita", "kita-es", "cio")
    assert str(cio["totp_uri"]).startswith("otpauth://totp/")
    _add(admin, tmp_path, "t.sato", "kita-es", "teacher", name="佐藤 花子")
    listed = admin.run("users", "list", "--json").json()
    assert {u["id"] for u in listed} == {"admin", "cio.kita", "t.sato"}  # type: ignore[union-attr]

    who = Persona(tmp_path / "home-cio")
    gateway.login(who, "cio.kita", PASSWORD, str(cio["totp_uri"]))
    issued = who.run("keys", "issue", "--user", "t.sato", "--module", token.module,
                     "--token-label", token.label, "--pin-file", _pin_file(tmp_path, token.pin),
                     "--json").json()
    serial = issued["serial"]

    # The token holds the certificate and a private key that never leaves it.
    objects = subprocess.run(
        ["pkcs11-tool", "--module", token.module, "--token-label", token.label, "--login",
         "--pin", token.pin, "--list-objects"], capture_output=True, text=True, check=True,
        env=token.env).stdout
    assert "Certificate Object" in objects and "t.sato" in objects
    private = objects[objects.index("Private Key Object"):]
    access = next(line for line in private.splitlines() if "Access:" in line)
    assert "sensitive" in access and "never extractable" in access

    cert = tmp_path / "t.sato.pem"
    cert.write_text(issued["certificate"])
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(gateway.ca), "-purpose",
                             "sslclient", str(cert)], capture_output=True, text=True)
    assert verify.returncode == 0 and ": OK" in verify.stdout
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-enddate",
                           "-subject"], capture_output=True, text=True, check=True).stdout
    assert "Mar 31" in text and "t.sato" in text and "kita-es" in text

    keys = who.run("keys", "list", "--user", "t.sato", "--json").json()
    assert [k["serial"] for k in keys] == [serial]  # type: ignore[index]
    who.run("keys", "revoke", serial, "--reason", "keyCompromise")
    again = who.run("keys", "revoke", serial, "--reason", "keyCompromise", check=False)
    assert again.code == 1 and "already revoked" in again.err
    assert "Traceback" not in again.err

    crl = tmp_path / "crl.pem"
    who.run("keys", "crl", "--out", str(crl))
    crl_text = subprocess.run(["openssl", "crl", "-in", str(crl), "-noout", "-text"],
                              capture_output=True, text=True, check=True).stdout
    assert serial.upper().lstrip("0") in crl_text.replace(":", "").upper()
    assert "Key Compromise" in crl_text
    openssl_ok = subprocess.run(["openssl", "crl", "-in", str(crl), "-CAfile", str(gateway.ca),
                                 "-noout"], capture_output=True, text=True)
    assert openssl_ok.returncode == 0 and "verify OK" in (openssl_ok.stdout + openssl_ok.stderr)

    audit = admin.run("audit", "tail", "-n", "100", "--json").json()
    kinds = [r["kind"] for r in audit]  # type: ignore[union-attr]
    for kind in ("gateway.init", "operator.login", "user.add", "key.issue", "key.revoke"):
        assert kind in kinds, kind

    ok = admin.run("audit", "verify", "--data", str(gateway.data))
    assert ok.out.startswith("OK")

    log = gateway.data / "audit" / "audit.log"
    original = log.read_bytes()
    # One byte changed in the middle of a record.
    pos = original.index(b'"key.issue"') + 3
    log.write_bytes(original[:pos] + bytes([original[pos] ^ 0x01]) + original[pos + 1:])
    broken = admin.run("audit", "verify", "--data", str(gateway.data), check=False)
    assert broken.code == 3 and broken.out.startswith("BROKEN") and "was changed" in broken.out
    # The last record removed.
    lines = original.splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))
    cut = admin.run("audit", "verify", "--data", str(gateway.data), check=False)
    assert cut.code == 3 and "removed" in cut.out, cut.out
    log.write_bytes(original)


def test_bad_input_gets_one_clear_sentence_and_changes_nothing(
    gateway: Gateway, admin: Persona, tmp_path: Path, softhsm_token: object
) -> None:
    token = softhsm_token
    cio = _add(admin, tmp_path, "cio.kita", "kita-es", "cio")
    _add(admin, tmp_path, "t.sato", "kita-es", "teacher")
    _add(admin, tmp_path, "t.mori", "minami-es", "teacher")
    who = Persona(tmp_path / "home-cio")
    gateway.login(who, "cio.kita", PASSWORD, str(cio["totp_uri"]))

    def refused(result: object, fragment: str) -> None:
        assert result.code != 0, result  # type: ignore[attr-defined]
        err = result.err.strip()  # type: ignore[attr-defined]
        # Progress lines may come first; the refusal is one "staffroom: …" sentence.
        errors = [line for line in err.splitlines() if line.startswith("staffroom: ")]
        assert "Traceback" not in err and len(errors) == 1, err
        assert fragment in errors[0], err

    issue = ["keys", "issue", "--user", "t.sato", "--module", token.module, "--token-label",
             token.label]
    refused(who.run(*issue, "--pin-file", _pin_file(tmp_path, "999999"), check=False),
            "PIN is wrong")
    refused(who.run("keys", "issue", "--user", "t.sato", "--module", "/nonexistent/p11.so",
                    "--pin-file", _pin_file(tmp_path, token.pin), check=False),
            "/nonexistent/p11.so")
    refused(who.run("keys", "issue", "--user", "t.sato", "--module", token.module,
                    "--token-label", "no-such-token", "--pin-file",
                    _pin_file(tmp_path, token.pin), check=False), "no-such-token")
    # A CIO acting for another school.
    refused(who.run("keys", "issue", "--user", "t.mori", "--module", token.module,
                    "--token-label", token.label, "--pin-file", _pin_file(tmp_path, token.pin),
                    check=False), "only within your own school")
    refused(who.run("users", "disable", "t.mori", check=False), "only within your own school")
    assert who.run("keys", "list", "--json").json() == []

    # A malformed roster line: reported with its number, nothing imported.
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,school,role\nt.new1,A,kita-es,teacher\nt.new2,B,kita-es\n")
    refused(who.run("users", "import", str(roster), check=False), "Line 3")
    users = {u["id"] for u in admin.run("users", "list", "--json").json()}  # type: ignore
    assert "t.new1" not in users

    # Re-init refuses and leaves the CA untouched.
    ca_before = gateway.ca.read_bytes()
    refused(admin.run("init", str(gateway.data), "--hostname", "localhost", check=False),
            "refusing to overwrite")
    assert gateway.ca.read_bytes() == ca_before

    # A reused TOTP code is refused.
    other = Persona(tmp_path / "home-cio-2")
    code = pyotp.parse_uri(str(cio["totp_uri"])).now()
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    first = other.run("login", "--gateway", gateway.url, "--ca", str(gateway.ca), "--user",
                      "cio.kita", "--password-file", str(pw), "--totp", code, check=False)
    if first.code == 0:  # the fixture's login may already have used this step's code
        refused(other.run("login", "--gateway", gateway.url, "--ca", str(gateway.ca),
                          "--user", "cio.kita", "--password-file", str(pw), "--totp", code,
                          check=False), "already used")
    else:
        refused(first, "already used")

    # An operator session that expired on the gateway.
    with sqlite3.connect(gateway.data / "state.db") as db:
        db.execute("UPDATE operator_sessions SET expires_at = '2000-01-01T00:00:00+00:00' "
                   "WHERE user_id = 'cio.kita'")
    session = json.loads((who.home / "session.json").read_text())
    assert session["user"] == "cio.kita"
    refused(who.run("keys", "list", check=False), "expired")

    # A gateway whose certificate another CA vouches for.
    stranger = tmp_path / "stranger"
    other_init = admin.run("init", str(stranger), "--hostname", "localhost", "--json").json()
    refused(Persona(tmp_path / "home-x").run(
        "login", "--gateway", gateway.url, "--ca", other_init["ca_cert"], "--user", "admin",
        "--password-file", str(pw), "--totp", "000000", check=False),
        "not vouched for by your school's CA")


def test_data_dir_secrets_are_private_and_scopes_hold(
    gateway: Gateway, admin: Persona, tmp_path: Path
) -> None:
    import stat

    for path, mode in ((gateway.data / "state.db", 0o600), (gateway.data / "audit", 0o700),
                       (gateway.data / "ca" / "ca.key", 0o600),
                       (gateway.data / "tls" / "server.key", 0o600),
                       (gateway.data / "audit-signing.key", 0o600),
                       (gateway.data / "keys", 0o700),
                       (gateway.data / "keys" / "recordings.key", 0o600)):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    _add(admin, tmp_path, "t.kita", "kita-es", "teacher")
    _add(admin, tmp_path, "t.minami", "minami-es", "teacher")
    officer = _add(admin, tmp_path, "sec.kita", "kita-es", "officer")
    cio = _add(admin, tmp_path, "cio.kita", "kita-es", "cio")
    who = Persona(tmp_path / "home-sec")
    gateway.login(who, "sec.kita", PASSWORD, str(officer["totp_uri"]))
    seen = {u["id"] for u in who.run("users", "list", "--json").json()}  # type: ignore
    assert seen == {"t.kita", "sec.kita", "cio.kita"}
    records = who.run("audit", "tail", "-n", "200", "--json").json()
    assert records and all(r["school"] == "kita-es" for r in records)  # type: ignore
    # A CIO may not read the audit log: one sentence, and the refusal is itself audited.
    c = Persona(tmp_path / "home-cio")
    gateway.login(c, "cio.kita", PASSWORD, str(cio["totp_uri"]))
    refused = c.run("audit", "tail", check=False)
    assert refused.code == 1 and "may not do this (audit.read)" in refused.err, refused.err
    denials = admin.run("audit", "export", "--json", "--kind", "access.denied").json()
    assert any(r["actor"] == "cio.kita" and r["details"]["action"] == "audit.read"
               for r in denials)  # type: ignore[union-attr]
    # A date without a time zone is read in the gateway's local time, not an internal error.
    since = admin.run("audit", "export", "--json", "--since", "2020-04-01")
    assert since.code == 0 and since.json()


def test_gateway_refuses_to_start_on_a_policy_typo(tmp_path: Path) -> None:
    from tests.fixtures.gateway import free_port, init_gateway

    gw = init_gateway(tmp_path, free_port())
    (gw.data / "policies" / "10-kita.toml").write_text(
        '[match]\nschools = ["kita-es"]\n\n[redirection]\nclipbord = "to-remote"\n')
    p = subprocess.run([STAFFROOM_BIN, "gateway", "--data", str(gw.data)], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 1
    assert "10-kita.toml:5: redirection.clipbord" in p.stderr and "allowed keys" in p.stderr
    assert "Traceback" not in p.stderr
