"""`staffroom-agent check|connect` (also `staffroom agent …`): what the teacher runs at home.

The gateway, the CA and the key's module come from the flags, else the installed config file
(agent/install_config.py); the module, failing those, from the probe list (agent/token_module.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.cli_support import CliError, ask_line, ask_secret, print_json, progress
from agent.install_config import AgentConfig, load_config
from agent.posture import collect_posture, current_os
from agent.posture.checks import Check, checks_to_json, format_checks, posture_checks
from agent.token_module import ModuleChoice, find_module

EXPIRY_WARNING_DAYS = 30


def _freshclam_conf(args: argparse.Namespace) -> Path | None:
    value = args.freshclam_conf or os.environ.get("STAFFROOM_FRESHCLAM_CONF")
    return Path(value) if value else None


def token_checks(module: str, label: str | None, slot: int | None,
                 now: datetime) -> list[Check]:
    """Token present, a certificate on it, and days until it expires (no PIN needed)."""
    from agent.token import TokenError, read_certificates

    try:
        certs = read_certificates(module, token_label=label, slot=slot)
    except TokenError as e:
        return [Check("Authentication key", False, "not found", str(e), "token-missing")]
    checks = [Check("Authentication key", True, f"token {label or slot or 'found'}")]
    if not certs:
        checks.append(Check("Key certificate", False, "none on the token",
                            "This token has no Staffroom key: ask your school's IT lead to "
                            "issue one.", "cert-missing"))
        return checks
    cert = max(certs, key=lambda c: c.not_valid_after_utc)
    days = (cert.not_valid_after_utc - now).days
    subject = cert.subject.rfc4514_string()
    if days < 0:
        checks.append(Check("Key certificate", False, f"{subject}, expired",
                            "Your key's certificate has expired: ask your school's IT lead "
                            "for a new one.", "cert-expired"))
    else:
        detail = f"{subject}, expires in {days} days ({cert.not_valid_after_utc:%Y-%m-%d})"
        if days < EXPIRY_WARNING_DAYS:
            detail += " — ask your IT lead to renew it soon"
        checks.append(Check("Key certificate", True, detail))
    return checks


def _module(args: argparse.Namespace, config: AgentConfig) -> ModuleChoice:
    return find_module(current_os(), flag=args.module, env=os.environ, config=config)


def key_checks(args: argparse.Namespace, config: AgentConfig, now: datetime) -> list[Check]:
    """Which driver was picked and why, then the token on it."""
    try:
        choice = _module(args, config)
    except CliError as e:
        return [Check("Key driver", False, "none found", str(e), "module-missing")]
    checks = [Check("Key driver", True, f"{choice.path} ({choice.why})")]
    label = args.token_label or (None if args.slot is not None else config.token_label)
    return checks + token_checks(choice.path, label, args.slot, now)


def cmd_check(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    report = collect_posture(now, clamav_config=_freshclam_conf(args))
    checks = list(posture_checks(report, now))
    checks += key_checks(args, load_config(current_os()), now)
    if args.json:
        print_json(checks_to_json(checks) | {"posture": report.to_json()})
    else:
        print(format_checks(checks))
    return 0 if all(c.ok for c in checks) else 1


def cmd_connect(args: argparse.Namespace) -> int:
    from agent.connect import ConnectOptions, Identity, open_browser, run_session
    from agent.launch_file import remove_launch_file, write_launch_file
    from agent.login import Credentials
    from agent.token import TokenError, open_token

    if args.password_file and args.totp:
        raise CliError("Give either --password-file or --totp, not both; Staffroom asks for "
                       "whatever else the gateway's policy requires.")
    config = load_config(current_os())
    gateway = args.gateway or config.gateway
    ca = args.ca or config.ca
    if not gateway or not ca:
        missing = "--gateway" if not gateway else "--ca"
        raise CliError(f"No {'gateway address' if not gateway else 'school CA certificate'} "
                       f"is configured: pass {missing}, or reinstall the agent your school "
                       "gave you (its config file names both).")
    choice = _module(args, config)
    progress(f"Key driver: {choice.path} ({choice.why}).")
    label = args.token_label or (None if args.slot is not None else config.token_label)
    pin = ask_secret("PIN of your authentication key: ", file=args.pin_file, what="pin")
    conf = _freshclam_conf(args)

    def posture() -> dict[str, Any]:
        return collect_posture(datetime.now(UTC), clamav_config=conf).to_json()

    def password() -> str:
        return ask_secret("Password: ", file=args.password_file, what="password")

    def totp() -> str:
        return args.totp or ask_line("Authenticator code: ", "TOTP code (--totp)")

    launch: list[Path] = []

    def show(url: str) -> None:
        # The one-time link goes into a 0600 file, never onto a command line (see /proc).
        path = write_launch_file(url)
        launch.append(path)
        print(f"Viewer: {path}", flush=True)
        if not args.no_browser:
            open_browser(path.as_uri())

    try:
        with open_token(choice.path, token_label=label, slot=args.slot, pin=pin) as token:
            key_id, cert = token.find_identity()
            from cryptography.hazmat.primitives.serialization import Encoding

            user = _user_of(cert)
            progress(f"Key of {user} found on the token; connecting to {gateway}…")
            identity = Identity(user=user, certificate_der=cert.public_bytes(Encoding.DER),
                                sign=lambda data: token.sign(key_id, data))
            options = ConnectOptions(gateway=gateway, ca=ca, posture=posture,
                                     credentials=Credentials(password=password, totp=totp),
                                     open_browser=not args.no_browser)
            return asyncio.run(run_session(identity, options, show))
    except TokenError as e:
        raise CliError(str(e)) from None
    finally:
        for path in launch:
            remove_launch_file(path)


def _user_of(cert: Any) -> str:
    from cryptography.x509.oid import NameOID

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise CliError("The certificate on the token names no user: ask your IT lead to "
                       "issue the key again.")
    return str(names[0].value)


def _token_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--module",
                   help="PKCS#11 library of your token, e.g. opensc-pkcs11.so (default: "
                        "$STAFFROOM_PKCS11_MODULE, the installed config, else the installed "
                        "driver found)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--token-label", help="the token's label (default: the first token)")
    g.add_argument("--slot", type=int, help="the slot number")
    p.add_argument("--freshclam-conf", help=argparse.SUPPRESS)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    agent = sub.add_parser("agent", help="the teacher's side: check this PC, connect")
    add_commands(agent.add_subparsers(dest="agent_cmd", required=True, metavar="COMMAND"))


def add_commands(asub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """check and connect: under `staffroom agent` and as `staffroom-agent` itself."""
    p = asub.add_parser("check", help="check antivirus, token and certificate before connecting")
    _token_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)
    p = asub.add_parser("connect", help="log in with your key and open the school desktop")
    p.add_argument("--gateway", help="the gateway's URL, e.g. https://gw:8443 (default: the "
                   "installed config)")
    p.add_argument("--ca", help="your school's CA certificate, ca.pem (default: the installed "
                   "config)")
    _token_args(p)
    p.add_argument("--pin-file", help="read the key's PIN from this file")
    p.add_argument("--password-file", help="read your password from this file")
    p.add_argument("--totp", help="the current code of your authenticator app")
    p.add_argument("--no-browser", action="store_true",
                   help="do not open a browser; print the viewer's launch file on a line "
                   "'Viewer: PATH' (open it in your browser)")
    p.set_defaults(func=cmd_connect)



