"""`staffroom init|gateway|audit verify`: the commands that run on the gateway machine."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from agent.cli_support import CliError, print_json, progress, read_secret_file


def _passphrase(args: argparse.Namespace) -> bytes | None:
    if getattr(args, "ca_passphrase_file", None):
        return read_secret_file(args.ca_passphrase_file, "CA passphrase").encode()
    env = os.environ.get("STAFFROOM_CA_PASSPHRASE")
    return env.encode() if env else None


def cmd_init(args: argparse.Namespace) -> int:
    from gateway.setup import InitError, init_data_dir, qr_terminal
    from gateway.store.dsn import redact

    database = _database_url(args)
    progress(f"Creating the Staffroom gateway in {args.data_dir}…")
    try:
        result = init_data_dir(
            Path(args.data_dir), args.hostname, listen=args.listen, admin_id=args.admin,
            ca_passphrase=_passphrase(args), curve=args.curve, public_url=args.public_url,
            database=database,
        )
    except InitError as e:
        raise CliError(str(e)) from None
    if args.json:
        print_json({
            "data_dir": str(result.data_dir), "admin_user": result.admin_user,
            "admin_password": result.admin_password, "totp_uri": result.totp_uri,
            "totp_qr_png": str(result.totp_png), "ca_cert": str(result.ca_cert),
            "gateway_url": result.gateway_url,
            "database": redact(database) if database else None,
        })
        return 0
    state = f"the state database ({redact(database)})" if database else "the state database"
    print(f"Created the school CA ({result.ca_cert}), the gateway's TLS certificate, {state}, "
          "the audit log and the policies.")
    print()
    print(f"Administrator:      {result.admin_user}")
    print(f"One-time password:  {result.admin_password}")
    print(f"Authenticator:      {result.totp_uri}")
    print(f"QR code (PNG):      {result.totp_png}")
    print(qr_terminal(result.totp_uri))
    print("Next: start the gateway with")
    print(f"  staffroom gateway --data {result.data_dir}")
    print("and log in with")
    print(f"  staffroom login --gateway {result.gateway_url} --ca {result.ca_cert} "
          f"--user {result.admin_user}")
    return 0


def _database_url(args: argparse.Namespace) -> str | None:
    """--db, or --db-file (a file holding the URL, so the password stays out of `ps`)."""
    if getattr(args, "db_file", None):
        return read_secret_file(args.db_file, "database URL")
    return args.db  # type: ignore[no-any-return]


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise CliError(f"--listen must be HOST:PORT, not {text!r}.")
    return host.strip("[]"), int(port)


def _keep_public_url(data_dir: Path, url: str) -> None:
    """`gateway --public-url`: kept in DATA_DIR/gateway.json for the next starts too."""
    from dataclasses import replace

    from gateway.datadir import DataDir, check_public_url

    data = DataDir(data_dir)
    if not data.config_file.exists():
        return  # open_context says what is wrong
    try:
        normalised = check_public_url(url)
    except ValueError as e:
        raise CliError(str(e)) from None
    config = data.read_config()
    if config.public_url != normalised:
        data.write_config(replace(config, public_url=normalised))
        progress(f"The public URL is now {normalised} (kept in {data.config_file}).")


def cmd_gateway(args: argparse.Namespace) -> int:
    from gateway.malloc_arenas import limit_arenas

    limit_arenas()  # before any thread starts: see the module

    import logging

    from gateway import event_loop, logs
    from gateway.app import StartupError, open_context, serve

    logs.setup()
    if args.public_url:
        _keep_public_url(Path(args.data), args.public_url)
    try:
        loop = event_loop.choose()
        context = open_context(Path(args.data), _passphrase(args), node=_node(args.node))
        host, port = _listen(args.listen or context.config.listen)
        logging.getLogger("gateway.app").info("event loop: %s", loop.name)
        loop.run(serve(context, host, port))
    except (StartupError, event_loop.EventLoopUnavailable) as e:
        raise CliError(str(e)) from None
    except KeyboardInterrupt:
        pass
    return 0


def _node(name: str | None) -> str:
    """This gateway's node name: --node, else the host name (one node per host by default)."""
    import re
    import socket

    node = name if name is not None else socket.gethostname().split(".")[0]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", node or ""):
        raise CliError(f"--node must be 1-63 letters, digits, '.', '_' or '-', not {node!r}.")
    return node


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from gateway.audit.status import verify_data_dir

    result = verify_data_dir(Path(args.data))
    if args.json:
        print_json({"ok": result.ok, "records": result.records,
                    "first_bad_seq": result.first_bad_seq, "message": result.message,
                    "last_checkpoint": result.last_checkpoint, "nodes": list(result.nodes)})
    elif result.ok:
        print(f"OK: {result.message}")
    else:
        print(f"BROKEN: {result.message}")
    return 0 if result.ok else 3


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("init", help="create a gateway's data directory, CA and first admin")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--hostname", action="append", required=True,
                   help="a name (or IP) teachers use to reach the gateway; repeatable")
    p.add_argument("--listen", default="127.0.0.1:8443", help="default HOST:PORT to serve on")
    p.add_argument("--admin", default="admin", help="the first administrator's user id")
    p.add_argument("--curve", default="P-256", choices=["P-256", "P-384"])
    p.add_argument("--public-url", help="the URL people use when a load balancer is in front "
                   "(default: https://FIRST-HOSTNAME:PORT)")
    p.add_argument("--ca-passphrase-file", help="encrypt the CA key with this passphrase")
    db = p.add_mutually_exclusive_group()
    db.add_argument("--db", metavar="URL", help="a PostgreSQL database shared by several "
                    "gateway nodes: postgresql://USER:PASSWORD@HOST:PORT/DATABASE (default: "
                    "SQLite in DATA_DIR)")
    db.add_argument("--db-file", metavar="FILE", help="read the --db URL from this file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("gateway", help="run the gateway (HTTPS, TLS 1.2+)")
    p.add_argument("--data", required=True, metavar="DATA_DIR")
    p.add_argument("--listen", help="HOST:PORT (default: the one given to init)")
    p.add_argument("--public-url", help="the URL people use, e.g. a load balancer's "
                   "https://gw.school.example (kept in DATA_DIR/gateway.json)")
    p.add_argument("--ca-passphrase-file", help="the CA key's passphrase, if it has one")
    p.add_argument("--node", help="this gateway's name among nodes sharing one database "
                   "(default: the host name)")
    p.set_defaults(func=cmd_gateway)


def cmd_tls_renew(args: argparse.Namespace) -> int:
    from gateway.datadir import DataDir
    from gateway.pki.ca import CAError
    from gateway.pki.renew import renew_server_cert

    if not DataDir(Path(args.data)).config_file.exists():
        raise CliError(f"{args.data} is not a Staffroom data directory.")
    try:
        renewed = renew_server_cert(Path(args.data), passphrase=_passphrase(args))
    except CAError as e:
        raise CliError(str(e)) from None
    if args.json:
        print_json({"cert": str(renewed.cert), "serial": renewed.serial,
                    "not_after": renewed.not_after.isoformat(),
                    "hostnames": list(renewed.hostnames)})
        return 0
    print(f"New TLS certificate {renewed.serial} for {', '.join(renewed.hostnames)}, valid "
          f"until {renewed.not_after:%Y-%m-%d} ({renewed.cert}).")
    print("A running gateway serves it after `kill -HUP PID` (or a restart).")
    return 0


def register_tls(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tls = sub.add_parser("tls", help="the gateway's TLS certificate")
    tsub = tls.add_subparsers(dest="tls_cmd", required=True, metavar="COMMAND")
    p = tsub.add_parser("renew", help="a new server certificate from the school CA (365 days)")
    p.add_argument("--data", required=True, metavar="DATA_DIR")
    p.add_argument("--ca-passphrase-file", help="the CA key's passphrase, if it has one")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tls_renew)


def register_audit(audit: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = audit.add_parser("verify", help="check the audit log's hash chain and signatures")
    p.add_argument("--data", required=True, metavar="DATA_DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit_verify)


def _policy_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "dir", None):
        return Path(args.dir)
    if args.data:
        return Path(args.data) / "policies"
    raise CliError("Name the policy folder, or the gateway's data directory with --data.")


def cmd_policy_check(args: argparse.Namespace) -> int:
    from gateway.policy.load import check_dir

    directory = _policy_dir(args)
    problems = check_dir(directory)
    for problem in problems:
        print(problem)
    if not problems:
        files = sorted(p.name for p in directory.glob("*.toml"))
        print(f"OK: {directory} ({', '.join(files)}) is valid.")
    return 1 if problems else 0


def cmd_policy_explain(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime

    from gateway.datadir import DataDir
    from gateway.policy.decide import explain
    from gateway.policy.load import PolicyError, load_policies
    from gateway.store.base import StoreError
    from gateway.store.open import open_store
    from gateway.wire.posture import PostureFormatError, PostureReport

    data = DataDir(Path(args.data))
    if not data.config_file.exists():
        raise CliError(f"{args.data} is not a Staffroom data directory.")
    try:
        store = open_store(data, data.read_config())
    except StoreError as e:
        raise CliError(str(e)) from None
    user = store.get_user(args.user)
    store.close()
    if user is None:
        raise CliError(f"There is no account named {args.user!r}.")
    try:
        resolved = load_policies(data.policies).resolve(user.id, user.role, user.school)
    except PolicyError as e:
        raise CliError(str(e)) from None
    try:
        at = datetime.fromisoformat(args.at).astimezone() if args.at else \
            datetime.now().astimezone()
    except ValueError:
        raise CliError(f"--at must be an ISO time like 2027-04-08T22:10, not {args.at!r}.") \
            from None
    posture = None
    if args.posture:
        try:
            raw = json.loads(Path(args.posture).read_text())
            posture = PostureReport.from_json(raw.get("posture", raw) if isinstance(raw, dict)
                                              else raw)
        except (OSError, ValueError, PostureFormatError) as e:
            raise CliError(f"Cannot read the posture report {args.posture}: {e}") from None
    print(f"{user.id} ({user.role}{', ' + user.school if user.school else ''})")
    for line in explain(resolved, now=at, posture=posture):
        print(line)
    return 0


def cmd_policy_upgrade(args: argparse.Namespace) -> int:
    import os
    import shutil
    from datetime import UTC, datetime

    from gateway.policy.load import DEFAULT, SHIPPED_DEFAULT, check_dir, key_lines
    from gateway.policy.upgrade import UpgradeError, merge, missing

    directory = _policy_dir(args)
    target = directory / DEFAULT
    try:
        text = target.read_bytes().decode("utf-8")  # line ends as they are
    except FileNotFoundError:
        raise CliError(f"There is no {target}: name the policy folder, or the gateway's data "
                       "directory with --data.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"Cannot read {target}: {e}") from None
    try:
        additions = missing(text, SHIPPED_DEFAULT.read_text(encoding="utf-8"))
        merged = merge(text, additions) if additions else text
    except UpgradeError as e:
        raise CliError(str(e)) from None
    backup = None
    if additions and not args.dry_run:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = target.with_name(f"{DEFAULT}.before-upgrade-{stamp}")
        tmp = target.with_name(f".{DEFAULT}.upgrade")
        try:
            shutil.copy2(target, backup)
            tmp.write_bytes(merged.encode("utf-8"))
            shutil.copymode(target, tmp)
            os.replace(tmp, target)  # atomic: the gateway never reads half a file
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise CliError(f"Cannot write {target} ({e.strerror or e}): run this as the user "
                           "who owns the policy folder.") from None
    problems = [] if args.dry_run else check_dir(directory)
    at = key_lines(merged)
    added = [{"section": a.section, "key": a.key, "setting": a.setting,
              "line": at.get((a.section, a.key))} for a in additions]
    if args.json:
        print_json({"file": str(target), "added": added, "written": backup is not None,
                    "backup": str(backup) if backup else None, "problems": problems})
        return 1 if problems else 0
    if not additions:
        print(f"{target} already sets every key this version ships; nothing to do.")
    else:
        verb = "would add" if args.dry_run else "added"
        print(f"{target}: {verb} {len(additions)} setting(s) this version ships:")
        for a in added:
            print(f"  line {a['line']}: [{a['section']}] {a['setting']}")
        if args.dry_run:
            print("Nothing was written (--dry-run).")
        else:
            print(f"The previous file is kept as {backup}. Reload the gateway (SIGHUP) or "
                  "restart it to apply.")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


def register_policy(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    policy = sub.add_parser("policy", help="check policies and explain decisions")
    psub = policy.add_subparsers(dest="policy_cmd", required=True, metavar="COMMAND")
    p = psub.add_parser("check", help="validate a policy folder (file:line for each problem)")
    p.add_argument("dir", nargs="?", help="the folder (default: DATA_DIR/policies)")
    p.add_argument("--data", metavar="DATA_DIR")
    p.set_defaults(func=cmd_policy_check)
    p = psub.add_parser("explain", help="what applies to a user, and why a login is refused")
    p.add_argument("--data", required=True, metavar="DATA_DIR")
    p.add_argument("--user", required=True)
    p.add_argument("--at", help="ISO time to decide for (default: now)")
    p.add_argument("--posture", help="a posture report (JSON, as `agent check --json` prints)")
    p.set_defaults(func=cmd_policy_explain)
    p = psub.add_parser("upgrade", help="add to default.toml the keys a newer Staffroom ships "
                        "(your values and comments stay)")
    p.add_argument("dir", nargs="?", help="the folder (default: DATA_DIR/policies)")
    p.add_argument("--data", metavar="DATA_DIR")
    p.add_argument("--dry-run", action="store_true", help="show what would be added")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_policy_upgrade)


def cmd_recordings_verify(args: argparse.Namespace) -> int:
    from gateway.audit.keys import load_public_key
    from gateway.recording.keys import verification_keys
    from gateway.recording.verify import verify_recording

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"There is no recording file {path}.")
    root = Path(args.data) if args.data else next(
        (p for p in path.resolve().parents if (p / "audit-signing.key").exists()), None)
    where = args.key or root
    if where is None:
        raise CliError("Give the gateway's data directory (--data) or its public key "
                       "(--key keys/recordings.pub) to check the signatures.")
    try:
        keys = [load_public_key(Path(args.key))] if args.key else verification_keys(Path(root))
    except (OSError, ValueError) as e:
        raise CliError(f"Cannot read the signing key in {where}: {e}.") from None
    if not keys:
        raise CliError(f"{root} has no recordings signing key: is it a Staffroom data directory?")
    result = verify_recording(path, keys)
    if args.json:
        print_json({"ok": result.ok, "cut_short": result.cut_short, "message": result.message,
                    "chunks": result.chunks, "duration": result.duration})
    else:
        verdict = "OK" if result.ok else "CUT SHORT" if result.cut_short else "BROKEN"
        print(f"{verdict}: {result.message}")
    # 0 intact and sealed; 4 cut short by a crash (intact up to its last checkpoint); 3 broken.
    return 0 if result.ok else 4 if result.cut_short else 3


def register_recordings(recordings: argparse._SubParsersAction) -> None:  # type: ignore
    p = recordings.add_parser("verify", help="check a recording's hash chain and signatures")
    p.add_argument("file")
    p.add_argument("--data", metavar="DATA_DIR", help="the gateway's data directory")
    p.add_argument("--key", help="the recordings' public key (DATA_DIR/keys/recordings.pub; "
                   "audit-signing.pub for recordings made before it) instead of --data")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_recordings_verify)
