"""`staffroom-agent`: the teacher's program on its own (check, connect), frozen into the bundle the
board hands out. It imports only the agent and gateway.wire (import contract in pyproject.toml,
and tests/packaging checks the frozen bundle's module list)."""

from __future__ import annotations

import argparse
import os
import platform
import sys

from agent import __version__
from agent.cli_support import CliError

PROG = "staffroom-agent"


def version_text() -> str:
    how = "frozen" if getattr(sys, "frozen", False) else "Python"
    return f"{PROG} {__version__} ({how}, Python {platform.python_version()}, {sys.platform})"


def build_parser() -> argparse.ArgumentParser:
    from agent.cli import add_commands  # asyncio, ssl, …: not needed to print the version

    parser = argparse.ArgumentParser(
        prog=PROG, description="Staffroom for teachers: check this PC and your key, then connect "
                               "to the school desktop.")
    parser.add_argument("--version", action="version", version=version_text())
    add_commands(parser.add_subparsers(dest="agent_cmd", required=True, metavar="COMMAND"))
    return parser


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else argv) == ["--version"]:
        print(version_text())
        return 0
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted.", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("STAFFROOM_DEBUG"):
            raise
        print(f"{PROG}: unexpected error ({type(e).__name__}: {e}); run again with "
              "STAFFROOM_DEBUG=1 for details and report it to your IT lead.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
