"""Which PKCS#11 module (the key's driver library) the agent loads, and why.

Order, first given wins: --module, $STAFFROOM_PKCS11_MODULE, the installed config file, then the
per-OS probe list in pkcs11_drivers.toml (data, not code: a board adds its token's driver there or,
better, in the installer's config file). Nothing here is attacker-controlled: the paths come from
the teacher, the board's installer or the shipped list; loading a module runs its code, so only
these sources are used, never anything the gateway says.
"""

from __future__ import annotations

import glob
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.cli_support import CliError
from agent.install_config import AgentConfig

ENV_MODULE = "STAFFROOM_PKCS11_MODULE"
DRIVERS_FILE = Path(__file__).resolve().parent / "pkcs11_drivers.toml"
OS_KEYS = ("windows", "macos", "linux")
_WIN_VAR = re.compile(r"%([A-Za-z0-9_()]+)%")


@dataclass(frozen=True, slots=True)
class Driver:
    name: str
    keys: str
    install: str
    paths: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class ModuleChoice:
    path: str
    why: str  # "--module", "STAFFROOM_PKCS11_MODULE", "config file X", "found: OpenSC"
    driver: str | None = None


def load_drivers(path: Path = DRIVERS_FILE) -> tuple[Driver, ...]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CliError(f"The agent's driver list {path} is unreadable ({e}): reinstall the "
                       "agent.") from None
    drivers = []
    for n, d in enumerate(data.get("driver", []), 1):
        if not all(isinstance(d.get(k), str) and d[k] for k in ("name", "keys", "install")):
            raise CliError(f"{path}: driver {n} needs name, keys and install: reinstall the agent.")
        paths = {o: tuple(d.get(o, ())) for o in OS_KEYS}
        if not all(isinstance(p, str) for ps in paths.values() for p in ps):
            raise CliError(f"{path}: driver {d['name']} has a path that is not a string.")
        drivers.append(Driver(d["name"], d["keys"], d["install"], paths))
    return tuple(drivers)


def expand(pattern: str, os_name: str, env: Mapping[str, str]) -> list[str]:
    """One probe path made concrete: %VAR% on Windows, ~ anywhere, then glob (sorted)."""
    if os_name == "windows":
        def var(m: re.Match[str]) -> str:
            return env.get(m.group(1)) or env.get(m.group(1).upper()) or m.group(0)
        pattern = _WIN_VAR.sub(var, pattern)
        if "%" in pattern:  # an unset variable: this path cannot exist here
            return []
    pattern = os.path.expanduser(pattern)
    return sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]


def probe(os_name: str, env: Mapping[str, str], drivers: tuple[Driver, ...],
          exists: Callable[[str], bool] = os.path.isfile) -> list[ModuleChoice]:
    """Every installed module of the list, in its order."""
    found = []
    for d in drivers:
        for pattern in d.paths.get(os_name, ()):
            found += [ModuleChoice(p, f"found the {d.name} driver", d.name)
                      for p in expand(pattern, os_name, env) if exists(p)]
    return found


def none_found_message(os_name: str, drivers: tuple[Driver, ...]) -> str:
    listed = [d for d in drivers if d.paths.get(os_name) and "tests" not in d.keys]
    needs = "; ".join(f"{d.keys}: {d.install}" for d in listed)
    return (f"No driver for your key is installed on this computer: have it installed with "
            f"administrator rights by whoever looks after this PC ({needs}), or ask your IT "
            "lead which one your key needs.")


def find_module(os_name: str, *, flag: str | None, env: Mapping[str, str], config: AgentConfig,
                drivers: tuple[Driver, ...] | None = None,
                exists: Callable[[str], bool] = os.path.isfile) -> ModuleChoice:
    """The module to load and why; CliError naming the driver to install when there is none."""
    given = [(flag, "--module"), (env.get(ENV_MODULE), ENV_MODULE),
             (config.module, f"the config file {config.path}")]
    for value, why in given:
        if not value:
            continue
        # A bare name ("opensc-pkcs11.so") is left to the OS's library search.
        if ("/" in value or "\\" in value) and not exists(value):
            raise CliError(f"The key driver {value} (from {why}) does not exist: install the "
                           "driver or correct the path.")
        return ModuleChoice(value, why)
    drivers = load_drivers() if drivers is None else drivers
    found = probe(os_name, env, drivers, exists)
    if not found:
        raise CliError(none_found_message(os_name, drivers))
    return found[0]
