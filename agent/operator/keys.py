"""`staffroom keys issue|list|revoke|crl`: issue a key onto a token, list, revoke, fetch the CRL.

Issuing: the key pair is generated ON the token (never extractable); the token signs the
gateway's single-use challenge (proof of possession); the certificate the school CA returns is
written onto the token next to the key. A failure after generation removes the new key again.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from agent.cli_support import CliError, ask_secret, print_json, print_table, progress
from agent.operator.client import ApiClient
from agent.token import TokenError, open_token
from gateway.wire.enrol import pop_message

REASONS = ("keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation")


def cmd_keys_issue(args: argparse.Namespace) -> int:
    api = ApiClient.from_saved_session()
    pin = ask_secret("Token PIN: ", file=args.pin_file, what="pin")
    which = args.token_label or (f"slot {args.slot}" if args.slot is not None else "first token")
    progress(f"Opening the token ({which})…")
    try:
        with open_token(args.module, token_label=args.token_label, slot=args.slot,
                        pin=pin) as token:
            challenge = api.post("/api/v1/keys/challenge", {"user": args.user})
            progress("Generating the key pair on the token…")
            key_id, spki = token.generate_key(label=f"staffroom {args.user}")
            try:
                signature = token.sign(key_id, pop_message(challenge["nonce"], args.user, spki))
                progress("Asking the school CA for a certificate…")
                result = api.post("/api/v1/keys", {
                    "user": args.user, "nonce": challenge["nonce"],
                    "spki": base64.b64encode(spki).decode(),
                    "signature": base64.b64encode(signature).decode(),
                })
                cert = x509.load_pem_x509_certificate(result["certificate"].encode())
                token.store_certificate(key_id, cert.public_bytes(Encoding.DER),
                                        label=f"staffroom {args.user}")
            except BaseException:
                with contextlib.suppress(TokenError):
                    token.delete_key(key_id)
                raise
    except TokenError as e:
        raise CliError(str(e)) from None
    if args.json:
        print_json({k: v for k, v in result.items() if k != "certificate"}
                   | {"certificate": result["certificate"]})
    else:
        print(f"Issued key {result['serial']} to {result['user']} on the token; valid until "
              f"{result['not_after']}.")
    return 0


def _key_rows(keys: list[dict[str, Any]]) -> list[list[object]]:
    return [[k["serial"], k["user"], k["school"] or "-", k["status"],
             k["not_after"][:10], k["revoke_reason"] or ""] for k in keys]


def cmd_keys_list(args: argparse.Namespace) -> int:
    query = f"?{urlencode({'user': args.user})}" if args.user else ""
    keys = ApiClient.from_saved_session().get("/api/v1/keys" + query)["keys"]
    if args.json:
        print_json(keys)
    else:
        print_table(_key_rows(keys), ["SERIAL", "USER", "SCHOOL", "STATUS", "VALID UNTIL",
                                      "REASON"])
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    if bool(args.serial) == bool(args.user):
        raise CliError("Name either a certificate SERIAL or --user ID to revoke.")
    body: dict[str, Any] = {"reason": args.reason}
    body |= {"serial": args.serial} if args.serial else {"user": args.user}
    result = ApiClient.from_saved_session().post("/api/v1/keys/revoke", body)
    if args.json:
        print_json(result)
    for k in result["revoked"]:
        if not args.json:
            print(f"Revoked {k['serial']} of {k['user']} ({k['revoke_reason']}); the CRL is "
                  "updated.")
    return 0


def cmd_keys_crl(args: argparse.Namespace) -> int:
    pem = ApiClient.from_saved_session().get("/api/v1/crl")
    if args.out:
        Path(args.out).write_bytes(pem)
        progress(f"Wrote the CRL to {args.out}.")
    else:
        print(pem.decode(), end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="issue and revoke authentication keys").add_subparsers(
        dest="keys_cmd", required=True, metavar="COMMAND")
    p = keys.add_parser("issue", help="generate a key on a token and certify it for a user")
    p.add_argument("--user", required=True)
    p.add_argument("--module", required=True, help="PKCS#11 library, e.g. opensc-pkcs11.so")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--token-label", help="the token's label")
    g.add_argument("--slot", type=int, help="the slot number")
    p.add_argument("--pin-file", help="read the token's user PIN from this file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_issue)
    p = keys.add_parser("list", help="list issued keys (certificates)")
    p.add_argument("--user")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_list)
    p = keys.add_parser("revoke", help="revoke a key by serial or all keys of a user")
    p.add_argument("serial", nargs="?")
    p.add_argument("--user")
    p.add_argument("--reason", required=True, choices=REASONS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_revoke)
    p = keys.add_parser("crl", help="fetch the CRL signed by the school CA")
    p.add_argument("--out", help="write it to this file instead of printing it")
    p.set_defaults(func=cmd_keys_crl)
