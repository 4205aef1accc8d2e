"""`staffroom recordings list|export|request|requests|approve|decline`: officers' view of session
recordings and the two-person rule for replaying them (API client)."""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlencode

from agent.cli_support import print_json, print_table, progress
from agent.operator.client import ApiClient


def cmd_list(args: argparse.Namespace) -> int:
    query = f"?{urlencode({'user': args.user})}" if args.user else ""
    rows = ApiClient.from_saved_session().get("/api/v1/recordings" + query)["recordings"]
    if args.json:
        print_json(rows)
    else:
        print_table([[r["id"], r["user"], r["school"] or "-", r["started"][:19],
                      (r["ended"] or "running/cut")[:19], r["bytes"],
                      "sealed" if r["sealed"] else "not sealed", r["path"]] for r in rows],
                    ["ID", "USER", "SCHOOL", "STARTED", "ENDED", "BYTES", "STATE", "FILE"])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    data = ApiClient.from_saved_session().get(f"/api/v1/recordings/{args.id}/file")
    Path(args.out).write_bytes(data)
    progress(f"Wrote recording {args.id} ({len(data)} bytes) to {args.out}; check it with "
             f"`staffroom recordings verify {args.out} --key keys/recordings.pub`.")
    return 0


def cmd_request(args: argparse.Namespace) -> int:
    purpose = "export" if args.export else "replay"
    r = ApiClient.from_saved_session().post(f"/api/v1/recordings/{args.id}/requests",
                                            {"reason": args.reason, "purpose": purpose})
    if args.json:
        print_json(r)
        return 0
    print(r["id"])
    progress(f"Asked to {purpose} recording {args.id}; a second officer approves it with "
             f"`staffroom recordings approve {r['id']}`.")
    return 0


def cmd_requests(args: argparse.Namespace) -> int:
    query = "" if args.all else "?state=pending"
    rows = ApiClient.from_saved_session().get("/api/v1/replay-requests" + query)["requests"]
    if args.json:
        print_json(rows)
    else:
        print_table([[r["id"], r["recording"], r["purpose"], r["requester"], r["user"],
                      r["school"] or "-", r["state"], (r["expires"] or "-")[:19], r["reason"]]
                     for r in rows],
                    ["REQUEST", "RECORDING", "FOR", "ASKED BY", "USER", "SCHOOL", "STATE",
                     "UNTIL", "REASON"])
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    verb = "approve" if args.recordings_cmd == "approve" else "decline"
    r = ApiClient.from_saved_session().post(f"/api/v1/replay-requests/{args.request_id}/{verb}",
                                            {"note": args.note} if args.note else {})
    if args.json:
        print_json(r)
    elif verb == "approve":
        print(f"Approved {r['id']}: {r['requester']} may {r['purpose']} recording "
              f"{r['recording']} until {r['expires'][:19]}.")
    else:
        print(f"Declined {r['id']} ({r['requester']}, recording {r['recording']}).")
    return 0


def register(recordings: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = recordings.add_parser("list", help="session recordings (officers, admins)")
    p.add_argument("--user")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = recordings.add_parser("export", help="download a recording for evidence (audited)")
    p.add_argument("id")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)
    p = recordings.add_parser("request", help="ask to replay or export a recording (a second "
                              "officer approves; prints the request id)")
    p.add_argument("id")
    p.add_argument("--reason", required=True, help="why (the case, who asked); audited")
    p.add_argument("--export", action="store_true", help="ask to export, not only replay")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_request)
    p = recordings.add_parser("requests", help="replay requests waiting for a decision")
    p.add_argument("--all", action="store_true", help="decided and expired ones too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_requests)
    for verb, text in (("approve", "approve another officer's request (audited)"),
                       ("decline", "decline another officer's request (audited)")):
        p = recordings.add_parser(verb, help=text)
        p.add_argument("request_id")
        p.add_argument("--note", help="a note kept with the decision")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_decide)
