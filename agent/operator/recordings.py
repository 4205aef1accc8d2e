"""`staffroom recordings list|export`: officers' view of session recordings (API client)."""

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


def register(recordings: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = recordings.add_parser("list", help="session recordings (officers, admins)")
    p.add_argument("--user")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = recordings.add_parser("export", help="download a recording for evidence (audited)")
    p.add_argument("id")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)
