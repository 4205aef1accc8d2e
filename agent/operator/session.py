"""The operator session kept by `staffroom login` under $STAFFROOM_HOME (like `tsh login`).

The file holds a bearer token: it is created 0600 in a 0700 directory and removed on logout.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.cli_support import CliError


def home() -> Path:
    return Path(os.environ.get("STAFFROOM_HOME") or Path.home() / ".config" / "staffroom")


@dataclass(frozen=True, slots=True)
class SavedSession:
    gateway: str
    ca: str
    user: str
    role: str
    school: str | None
    token: str
    expires_at: str

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= datetime.fromisoformat(self.expires_at)


def session_path() -> Path:
    return home() / "session.json"


def save(session: SavedSession) -> Path:
    path = session_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(session), f)
    os.replace(tmp, path)
    return path


def load() -> SavedSession:
    path = session_path()
    try:
        data = json.loads(path.read_text())
        session = SavedSession(**data)
    except FileNotFoundError:
        raise CliError("You are not logged in: run `staffroom login --gateway URL --ca CA_PEM "
                       "--user ID` first.") from None
    except (ValueError, TypeError):
        raise CliError(f"The saved session {path} is damaged: run `staffroom login` "
                       "again.") from None
    if session.expired():
        raise CliError("Your operator session has expired: run `staffroom login` again.")
    return session


def forget() -> None:
    session_path().unlink(missing_ok=True)
