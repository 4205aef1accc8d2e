"""`staffroom`: the one console script. Each area registers its own subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from agent.cli_support import CliError

log = logging.getLogger("staffroom")


def build_parser() -> argparse.ArgumentParser:
    from agent import cli as agent_cli
    from agent.operator import commands, keys
    from agent.operator import recordings as operator_recordings
    from agent.operator import reports as operator_reports
    from gateway.cli import server

    parser = argparse.ArgumentParser(
        prog="staffroom",
        description="Staffroom: the school staff room, from home. Teachers connect with "
                    "`staffroom agent connect`; IT leads and officers manage the gateway.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server.register(sub)
    server.register_policy(sub)
    server.register_tls(sub)
    commands.register(sub)
    keys.register(sub)
    commands.register_workspaces(sub)
    audit = sub.add_parser("audit", help="read, export and verify the audit log")
    audit_sub = audit.add_subparsers(dest="audit_cmd", required=True, metavar="COMMAND")
    commands.register_audit(audit_sub)
    server.register_audit(audit_sub)
    recordings = sub.add_parser("recordings", help="list, export and verify session recordings")
    recordings_sub = recordings.add_subparsers(dest="recordings_cmd", required=True,
                                               metavar="COMMAND")
    operator_recordings.register(recordings_sub)
    server.register_recordings(recordings_sub)
    operator_reports.register(sub)
    agent_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as e:
        print(f"staffroom: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("staffroom: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `staffroom … | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        if os.environ.get("STAFFROOM_DEBUG"):
            raise
        print(f"staffroom: unexpected error ({type(e).__name__}: {e}); run again with "
              "STAFFROOM_DEBUG=1 for details and report it to your IT lead.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
