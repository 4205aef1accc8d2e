"""`staffroom reports hours|verify-receipt|receipt-key`: work-hours records and work receipts
(API client; a receipt can also be checked offline with the gateway's receipt public key)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlencode

from agent.cli_support import CliError, print_json, print_table, progress
from agent.operator.client import ApiClient
from gateway.wire import receipt


def cmd_hours(args: argparse.Namespace) -> int:
    query = {"school": args.school, "month": args.month}
    if args.user:
        query["user"] = args.user
    if args.csv:
        query["format"] = "csv"
    data = ApiClient.from_saved_session().get("/api/v1/reports/hours?" + urlencode(query))
    if args.csv:
        sys.stdout.write(data.decode("utf-8") if isinstance(data, bytes) else str(data))
        return 0
    if args.json:
        print_json(data)
        return 0
    print_table([[w["user"], w["start"][:16].replace("T", " "),
                  w["end"][:16].replace("T", " ") or "(not ended)", w["active_minutes"],
                  w["idle_minutes"], w["session"]] for w in data["sessions"]],
                ["USER", "START", "END", "ACTIVE MIN", "IDLE MIN", "SESSION"])
    for t in data["totals"]:
        n = t["sessions"]
        progress(f"{t['user']}: {n} session{'s' if n != 1 else ''}, {t['active_minutes']} "
                 f"active and {t['idle_minutes']} idle minutes in {data['month']}.")
    return 0


def cmd_verify_receipt(args: argparse.Namespace) -> int:
    try:
        data = Path(args.file).read_bytes()
    except OSError as e:
        raise CliError(f"Cannot read {args.file} ({e.strerror}).") from None
    if args.public_key:
        from agent.operator.receipt_offline import verify_offline

        fields = verify_offline(data, Path(args.public_key))
    else:
        if len(data) > receipt.MAX_FILE:
            raise CliError("This file is too large to be a Staffroom work receipt.")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CliError("This file is not a Staffroom work receipt (not UTF-8).") from None
        answer = ApiClient.from_saved_session().post("/api/v1/reports/receipts/verify",
                                                     {"receipt": text})
        if not answer["valid"]:
            raise CliError(f"The receipt does NOT verify: {answer['message']}")
        fields = answer["receipt"]
    if args.json:
        print_json({"valid": True, "receipt": fields})
    else:
        print(f"The receipt verifies: session {fields['session']} of {fields['user']}, "
              f"{fields['start']} to {fields['end']}, {fields['active_minutes']} active and "
              f"{fields['idle_minutes']} idle minutes (signed by {fields['gateway']}).")
    return 0


def cmd_receipt_key(args: argparse.Namespace) -> int:
    pem = ApiClient.from_saved_session().get("/api/v1/reports/receipt-key")
    Path(args.out).write_bytes(pem)
    progress(f"Wrote the gateway's receipt public key to {args.out}; check receipts offline "
             f"with `staffroom reports verify-receipt FILE --public-key {args.out}`.")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    reports = sub.add_parser("reports", help="work-hours records and work receipts")
    rsub = reports.add_subparsers(dest="reports_cmd", required=True, metavar="COMMAND")
    p = rsub.add_parser("hours", help="sessions with active and idle minutes for one month")
    p.add_argument("--school", required=True)
    p.add_argument("--month", required=True, help="YYYY-MM (gateway local time)")
    p.add_argument("--user")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV for a spreadsheet")
    fmt.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_hours)
    p = rsub.add_parser("verify-receipt", help="check a teacher's signed work receipt")
    p.add_argument("file")
    p.add_argument("--public-key", help="check offline with this receipt public key (PEM)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify_receipt)
    p = rsub.add_parser("receipt-key", help="save the gateway's receipt public key")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_receipt_key)
