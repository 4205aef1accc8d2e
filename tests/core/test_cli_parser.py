"""`staffroom COMMAND …` builds only that command's part of the parser (gateway/cli/main.py):
the same options and help as the whole parser, without importing the other areas (the token,
posture, server and asyncio modules cost ≈ 0.25 s of every operator command)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from gateway.cli.main import AREAS, build_parser, command_of

HEAVY = ("pkcs11", "asyncio", "agent.token", "agent.posture", "cryptography.x509", "aiohttp",
         "gateway.app", "numpy", "PIL")


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _helps(parser: argparse.ArgumentParser) -> list[str]:
    """The help of a parser and of every subcommand below it, depth first."""
    out = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                out += _helps(child)
    return out


def test_the_table_names_every_command_in_the_order_help_lists_them() -> None:
    assert list(_commands(build_parser())) == list(AREAS)


@pytest.mark.parametrize("command", list(AREAS))
def test_a_commands_own_parser_matches_the_whole_one(command: str) -> None:
    whole = _commands(build_parser())[command]
    own = _commands(build_parser(command))
    assert command in own
    assert _helps(own[command]) == _helps(whole)


def test_only_a_known_first_word_narrows_the_parser() -> None:
    assert command_of(["sessions", "list", "--json"]) == "sessions"
    assert command_of(["--help"]) is None and command_of([]) is None
    assert command_of(["sesions", "list"]) is None  # a typo gets the whole list of commands


@pytest.mark.parametrize("command", ["sessions", "users", "audit", "recordings", "reports"])
def test_an_operator_command_does_not_load_the_token_posture_or_server(command: str) -> None:
    code = ("import sys\nfrom gateway.cli.main import build_parser\n"
            f"build_parser({command!r})\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == []


def test_a_mistyped_command_still_lists_every_command() -> None:
    run = subprocess.run([sys.executable, "-m", "gateway.cli.main", "sesions", "list"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "invalid choice: 'sesions'" in run.stderr and "recordings" in run.stderr
