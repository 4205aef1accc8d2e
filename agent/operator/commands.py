"""`staffroom login|logout|users|audit|workspaces`: the operator's commands (admin API client)."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from agent.cli_support import (
    CliError,
    ask_line,
    ask_secret,
    print_json,
    print_table,
    progress,
    read_secret_file,
)
from agent.operator import session as saved
from agent.operator.client import ApiClient


def _api() -> ApiClient:
    return ApiClient.from_saved_session()


def cmd_login(args: argparse.Namespace) -> int:
    client = ApiClient(args.gateway, args.ca)
    client.get("/api/v1/health")  # checks the address and the certificate before any secret
    password = ask_secret("Password: ", file=args.password_file, what="password")
    code = args.totp or ask_line("Authenticator code: ", "TOTP code (--totp)")
    result = client.post("/api/v1/login", {"user": args.user, "password": password,
                                           "totp": code})
    path = saved.save(saved.SavedSession(
        gateway=client.gateway, ca=str(Path(args.ca).resolve()), user=result["user"],
        role=result["role"], school=result["school"], token=result["token"],
        expires_at=result["expires_at"]))
    if args.json:
        print_json({k: v for k, v in result.items() if k != "token"} | {"session": str(path)})
        return 0
    where = f" at school {result['school']}" if result["school"] else ""
    print(f"Logged in to {client.gateway} as {result['user']} ({result['role']}{where}); "
          f"the session lasts until {result['expires_at']}.")
    if result.get("must_change_password"):
        print(f"Your password is a one-time password: set your own with "
              f"`staffroom users set-password {result['user']}`.")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    # An expired or revoked session is logged out already.
    with contextlib.suppress(CliError):
        _api().post("/api/v1/logout")
    saved.forget()
    print("Logged out.")
    return 0


def _user_rows(users: list[dict[str, Any]]) -> list[list[object]]:
    return [[u["id"], u["name"], u["role"], u["school"] or "-",
             "disabled" if u["disabled"] else "active",
             "yes" if u["totp_enrolled"] else "no"] for u in users]


def cmd_users_add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"id": args.id, "name": args.name, "school": args.school,
                            "role": args.role}
    if args.password_file:
        body["password"] = read_secret_file(args.password_file, "password")
    result = _api().post("/api/v1/users", body)
    if args.json:
        print_json(result)
        return 0
    print(f"Created {result['role']} {result['id']} ({result['name']}"
          f"{', ' + result['school'] if result['school'] else ''}).")
    if "password" in result:
        print(f"One-time password: {result['password']}  (they must change it at first login)")
    if "totp_uri" in result:
        print(f"Authenticator enrolment: {result['totp_uri']}")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    query = f"?{urlencode({'school': args.school})}" if args.school else ""
    users = _api().get("/api/v1/users" + query)["users"]
    if args.json:
        print_json(users)
    else:
        print_table(_user_rows(users), ["ID", "NAME", "ROLE", "SCHOOL", "STATUS", "TOTP"])
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    _api().post(f"/api/v1/users/{args.id}/disable")
    print(f"Disabled {args.id}: they can no longer log in or connect.")
    return 0


def _current_password(args: argparse.Namespace) -> str:
    return ask_secret("Current password: ", file=args.current_password_file,
                      what="current password")


def cmd_users_set_password(args: argparse.Namespace) -> int:
    s = saved.load()
    body: dict[str, Any] = {}
    if args.id == s.user:
        body["current_password"] = _current_password(args)
    if args.password_file:
        body["password"] = read_secret_file(args.password_file, "password")
    elif args.id == s.user:
        first = ask_secret("New password: ", file=None, what="password")
        if ask_secret("New password again: ", file=None, what="password") != first:
            raise CliError("The two passwords differ: nothing was changed.")
        body["password"] = first
    result = _api().post(f"/api/v1/users/{args.id}/password", body)
    if "password" in result:
        print(f"New one-time password for {args.id}: {result['password']}")
    else:
        print(f"Password changed for {args.id}.")
    return 0


def cmd_users_enroll_totp(args: argparse.Namespace) -> int:
    own = args.id == saved.load().user
    result = _api().post(f"/api/v1/users/{args.id}/totp",
                         {"current_password": _current_password(args)} if own else {})
    if args.json:
        print_json(result)
    else:
        print(f"Scan this in the authenticator app of {args.id}: {result['totp_uri']}")
    return 0


def cmd_users_import(args: argparse.Namespace) -> int:
    try:
        text = Path(args.roster).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise CliError(f"Cannot read the roster {args.roster}: {e.strerror}.") from None
    except UnicodeDecodeError:
        raise CliError(f"The roster {args.roster} is not UTF-8 text: save it as CSV UTF-8.") \
            from None
    result = _api().post("/api/v1/users/import", {"csv": text, "dry_run": args.dry_run})
    if args.json:
        print_json(result)
        return 0
    if args.dry_run:
        print(f"Would create {len(result['create'])} accounts; "
              f"{len(result['unchanged'])} already exist (unchanged).")
        for uid in result["create"]:
            print(f"  + {uid}")
        return 0
    print(f"Created {len(result['created'])} accounts; {len(result['unchanged'])} already "
          "existed (unchanged). One-time passwords:")
    print_table([[c["id"], c["school"], c["role"], c["password"]] for c in result["created"]],
                ["ID", "SCHOOL", "ROLE", "ONE-TIME PASSWORD"])
    return 0


def cmd_audit_tail(args: argparse.Namespace) -> int:
    records = _api().get(f"/api/v1/audit?{urlencode({'limit': args.n, 'order': 'tail'})}")
    if args.json:
        print_json(records["records"])
    else:
        print_table([[r["seq"], r["time"], r["kind"], r["outcome"], r.get("actor") or "-",
                      r.get("subject") or "-", r.get("school") or "-", r.get("node") or "-"]
                     for r in records["records"]],
                    ["SEQ", "TIME", "KIND", "OUTCOME", "ACTOR", "SUBJECT", "SCHOOL", "NODE"])
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    query = {k: v for k, v in {"user": args.user, "school": args.school, "kind": args.kind,
                               "since": args.since, "until": args.until}.items() if v}
    records = _api().get(f"/api/v1/audit?{urlencode(query | {'limit': 100000})}")["records"]
    print_json(records)
    return 0


def cmd_workspaces_assign(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"user": args.user, "provider": "xvnc" if args.xvnc else "vnc"}
    if args.vnc:
        body["address"] = args.vnc
        if args.password_file:
            body["password"] = read_secret_file(args.password_file, "password")
    _api().post("/api/v1/workspaces", body)
    where = "a private Xvnc desktop" if args.xvnc else f"the desktop at {args.vnc}"
    progress(f"{args.user} now works on {where}.")
    return 0


def cmd_workspaces_list(args: argparse.Namespace) -> int:
    rows = _api().get("/api/v1/workspaces")["workspaces"]
    if args.json:
        print_json(rows)
    else:
        print_table([[w["user"], w["provider"], w["display"] or "-", w["port"], w["attached"]]
                     for w in rows], ["USER", "PROVIDER", "DISPLAY", "PORT", "ATTACHED"])
    return 0


def cmd_sessions_list(args: argparse.Namespace) -> int:
    rows = _api().get("/api/v1/sessions")["sessions"]
    if args.json:
        print_json(rows)
    else:
        print_table([[s["id"], s["user"], s["school"] or "-", s["started_at"][:19],
                      s["remote"] or "-", s.get("node") or "-",
                      "yes" if s["attached"] else "no",
                      "-" if s["bytes_sent"] is None else s["bytes_sent"],
                      s["posture"]] for s in rows],
                    ["ID", "USER", "SCHOOL", "STARTED", "FROM", "NODE", "ATTACHED", "BYTES",
                     "POSTURE"])
    return 0


def cmd_workspaces_stop(args: argparse.Namespace) -> int:
    got = _api().post(f"/api/v1/workspaces/{quote(args.user, safe='')}/stop",
                      {"reason": args.reason})
    what = "stopped its desktop" if got.get("stopped") else "no desktop was running"
    print(f"{args.user}: {what}; {got.get('sessions_ended', 0)} live session(s) ended.")
    return 0


def cmd_sessions_terminate(args: argparse.Namespace) -> int:
    _api().post(f"/api/v1/sessions/{args.id}/terminate", {"reason": args.reason})
    print(f"Terminated session {args.id}; the teacher sees: {args.reason}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("login", help="log in to a gateway as an operator (password + TOTP)")
    p.add_argument("--gateway", required=True, help="gateway URL, e.g. https://gw:8443")
    p.add_argument("--ca", required=True, help="the school CA certificate (ca.pem)")
    p.add_argument("--user", required=True, help="your user id")
    p.add_argument("--password-file", help="read the password from this file")
    p.add_argument("--totp", help="the current code of your authenticator app")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_login)
    p = sub.add_parser("logout", help="end the operator session")
    p.set_defaults(func=cmd_logout)

    users = sub.add_parser("users", help="manage accounts").add_subparsers(
        dest="users_cmd", required=True, metavar="COMMAND")
    p = users.add_parser("add", help="create an account")
    p.add_argument("id")
    p.add_argument("--name", required=True)
    p.add_argument("--school", help="the school (left out only for board admins, officers "
                   "and the board's helpdesk)")
    p.add_argument("--role", required=True,
                   choices=["admin", "cio", "officer", "helpdesk", "teacher"])
    p.add_argument("--password-file", help="initial password (else a one-time one is made)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_users_add)
    p = users.add_parser("list", help="list accounts")
    p.add_argument("--school")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_users_list)
    p = users.add_parser("disable", help="disable an account")
    p.add_argument("id")
    p.set_defaults(func=cmd_users_disable)
    p = users.add_parser("set-password", help="set your password, or reset someone else's")
    p.add_argument("id")
    p.add_argument("--password-file")
    p.add_argument("--current-password-file",
                   help="your current password (needed to change your own)")
    p.set_defaults(func=cmd_users_set_password)
    p = users.add_parser("enroll-totp", help="enrol a new authenticator app (otpauth:// URI)")
    p.add_argument("id")
    p.add_argument("--current-password-file",
                   help="your current password (needed to enrol your own)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_users_enroll_totp)
    p = users.add_parser("import", help="create accounts from a roster CSV (id,name,school,role)")
    p.add_argument("roster")
    p.add_argument("--dry-run", action="store_true", help="show what would change")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_users_import)



def register_audit(audit: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = audit.add_parser("tail", help="the newest audit records (officers, admins)")
    p.add_argument("-n", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit_tail)
    p = audit.add_parser("export", help="export audit records as JSON")
    p.add_argument("--json", action="store_true", default=True)
    for name in ("user", "school", "kind", "since", "until"):
        p.add_argument(f"--{name}")
    p.set_defaults(func=cmd_audit_export)


def register_workspaces(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ws = sub.add_parser("workspaces", help="assign desktops to users").add_subparsers(
        dest="ws_cmd", required=True, metavar="COMMAND")
    p = ws.add_parser("assign", help="give a user a private Xvnc desktop or an existing one")
    p.add_argument("user")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--xvnc", action="store_true", help="a per-user TigerVNC Xvnc (default)")
    g.add_argument("--vnc", metavar="HOST:PORT", help="an existing VNC desktop")
    p.add_argument("--password-file", help="the existing desktop's VNC password")
    p.set_defaults(func=cmd_workspaces_assign)
    p = ws.add_parser("list", help="running desktops")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_workspaces_list)
    p = ws.add_parser("stop", help="end a teacher's desktop, everything in it and their "
                      "live sessions (admins; CIOs in their school)")
    p.add_argument("user")
    p.add_argument("--reason", required=True, help="shown to the teacher and audited")
    p.set_defaults(func=cmd_workspaces_stop)

    sessions = sub.add_parser("sessions", help="live sessions").add_subparsers(
        dest="sessions_cmd", required=True, metavar="COMMAND")
    p = sessions.add_parser("list", help="live sessions (officers, admins, CIOs)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sessions_list)
    p = sessions.add_parser("terminate", help="end a live session; the teacher sees the reason")
    p.add_argument("id")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_sessions_terminate)
