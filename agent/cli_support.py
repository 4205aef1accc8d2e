"""What every `staffroom` command shares: the one-sentence error, JSON and table output."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class CliError(Exception):
    """A refusal or failure the user can act on; printed as one sentence, exit code 1."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    if not rows:
        print("(none)")


def read_secret_file(path: str, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CliError(f"Cannot read the {what} file {path}: {e.strerror}.") from None
    lines = text.splitlines()
    return lines[0] if lines else ""


def ask_secret(prompt: str, *, file: str | None, what: str) -> str:
    """A secret from --…-file, else typed at the terminal without echo."""
    if file:
        return read_secret_file(file, what)
    if not sys.stdin.isatty():
        flag = what.replace(" ", "-")
        raise CliError(f"No terminal to ask for the {what}: pass it with --{flag}-file.")
    return getpass.getpass(prompt)


def ask_line(prompt: str, what: str) -> str:
    if not sys.stdin.isatty():
        raise CliError(f"No terminal to ask for the {what}: pass it on the command line.")
    return input(prompt).strip()


def progress(message: str) -> None:
    """A status line on stderr so --json output on stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)
