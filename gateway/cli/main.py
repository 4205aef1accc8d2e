"""`staffroom`: the one console script. Each area registers its own subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from agent.cli_support import CliError

log = logging.getLogger("staffroom")


# Every command, by the area that registers it. A command's run imports only its own area: a
# `staffroom sessions list` needs the API client, not the token, posture or server modules
# (building the whole parser took ≈ 0.34 s of a ≈ 0.46 s call).
AREAS: dict[str, str] = {
    "init": "server", "gateway": "server", "policy": "server", "tls": "server",
    "login": "operator", "logout": "operator", "users": "operator", "keys": "keys",
    "workspaces": "operator", "sessions": "operator", "audit": "audit",
    "recordings": "recordings", "reports": "reports", "agent": "agent",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser (help, an unknown command), or only ``command``'s when it is known."""
    def wants(*areas: str) -> bool:
        return command is None or AREAS.get(command) in areas

    parser = argparse.ArgumentParser(
        prog="staffroom",
        description="Staffroom: the school staff room, from home. Teachers connect with "
                    "`staffroom agent connect`; IT leads and officers manage the gateway.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if wants("server"):
        from gateway.cli import server

        server.register(sub)
        server.register_policy(sub)
        server.register_tls(sub)
    if wants("operator"):
        from agent.operator import commands

        commands.register(sub)
    if wants("keys"):
        from agent.operator import keys

        keys.register(sub)
    if wants("operator"):
        from agent.operator import commands

        commands.register_workspaces(sub)
    if wants("audit"):
        from agent.operator import commands
        from gateway.cli import server

        _group(sub, "audit", "read, export and verify the audit log",
               commands.register_audit, server.register_audit)
    if wants("recordings"):
        from agent.operator import recordings as operator_recordings
        from gateway.cli import server

        _group(sub, "recordings", "list, export and verify session recordings",
               operator_recordings.register, server.register_recordings)
    if wants("reports"):
        from agent.operator import reports as operator_reports

        operator_reports.register(sub)
    if wants("agent"):
        from agent import cli as agent_cli

        agent_cli.register(sub)
    return parser


def _group(sub: Any, name: str, text: str, *registers: Callable[[Any], None]) -> None:
    """A command whose subcommands come from both sides: the operator's (through the API)
    and the server's own (on DATA_DIR)."""
    group = sub.add_parser(name, help=text)
    commands = group.add_subparsers(dest=f"{name}_cmd", required=True, metavar="COMMAND")
    for register in registers:
        register(commands)


def command_of(argv: list[str]) -> str | None:
    """The command ``argv`` names, if it is one (options such as --help first: None)."""
    return argv[0] if argv and argv[0] in AREAS else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(command_of(argv)).parse_args(argv)
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
