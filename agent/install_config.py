"""The agent's installed config file: the board's gateway URL, its CA and the key's module, so
the Start-menu shortcut connects with no flags to type.

Attacker-controlled here: nothing the network sends; the file is written by the board's installer
(per-user, so the teacher's own account can edit it, which gains them nothing: the gateway checks
everything the agent says). Limits: at most 64 KiB, known keys only, string values; errors name the
file and line.

Where it is looked for, first found wins:
  1. $STAFFROOM_AGENT_CONFIG (only that file, if set);
  2. staffroom-agent.toml next to the program (where the MSI installs it);
  3. the user's config folder: %APPDATA%\\Staffroom\\ (Windows),
     ~/Library/Application Support/Staffroom/ (macOS), $XDG_CONFIG_HOME/staffroom/ (others).
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.cli_support import CliError

CONFIG_NAME = "staffroom-agent.toml"
ENV_CONFIG = "STAFFROOM_AGENT_CONFIG"
MAX_CONFIG_BYTES = 64 * 1024
KEYS = ("gateway", "ca", "module", "token_label")
PATH_KEYS = ("ca", "module")  # relative to the config file's folder


@dataclass(frozen=True, slots=True)
class AgentConfig:
    path: Path | None  # None: no config file found
    gateway: str | None = None
    ca: str | None = None
    module: str | None = None
    token_label: str | None = None


def program_dir() -> Path:
    """The folder of the running program: the frozen executable's, else this package's."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent
    return Path(__file__).resolve().parent


def user_config_dir(os_name: str, env: Mapping[str, str]) -> Path:
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if os_name == "windows":
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "Staffroom"
    if os_name == "macos":
        return home / "Library" / "Application Support" / "Staffroom"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "staffroom"


def config_candidates(os_name: str, env: Mapping[str, str],
                      program: Path | None = None) -> list[Path]:
    if env.get(ENV_CONFIG):
        return [Path(env[ENV_CONFIG])]
    return [(program or program_dir()) / CONFIG_NAME, user_config_dir(os_name, env) / CONFIG_NAME]


def load_config(os_name: str, env: Mapping[str, str] | None = None,
                program: Path | None = None) -> AgentConfig:
    env = os.environ if env is None else env
    for path in config_candidates(os_name, env, program):
        if path.is_file():
            return parse_config(path)
        if env.get(ENV_CONFIG):
            raise CliError(f"The config file {path} named by {ENV_CONFIG} does not exist: fix "
                           "the variable or remove it.")
    return AgentConfig(path=None)


def _line_of(text: str, key: str) -> int:
    m = re.search(rf"^[ \t]*{re.escape(key)}[ \t]*=", text, re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else 1


def parse_config(path: Path) -> AgentConfig:
    """Read and check one file; every problem is one sentence naming file:line."""
    try:
        raw = path.read_bytes()[:MAX_CONFIG_BYTES + 1]
    except OSError as e:
        raise CliError(f"Cannot read the agent's config file {path}: {e.strerror}.") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise CliError(f"{path}: longer than {MAX_CONFIG_BYTES // 1024} KiB; reinstall the agent "
                       "to get the board's config file back.")
    text = raw.decode("utf-8", "replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise CliError(f"{path}:{m.group(1) if m else 1}: not valid TOML ({e}); reinstall the "
                       "agent to get the board's config file back.") from None
    values: dict[str, str] = {}
    for key, value in data.items():
        where = f"{path}:{_line_of(text, key)}"
        if key not in KEYS:
            raise CliError(f"{where}: unknown setting {key!r} (known: {', '.join(KEYS)}).")
        if not isinstance(value, str) or not value.strip():
            raise CliError(f"{where}: {key} must be a non-empty string in quotes.")
        if key in PATH_KEYS and ("/" in value or "\\" in value or key == "ca"):
            value = str(path.parent / Path(os.path.expandvars(value)).expanduser())
        values[key] = value
    return AgentConfig(path=path, **values)
