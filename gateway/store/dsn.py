"""Database URLs as people may see them: never the password.

A `postgresql://user:secret@host:port/db` URL holds a credential. Everything that prints or logs
a database URL goes through `redact` (or names the server with `where`), and error text from the
driver is passed through `scrub` in case it echoes the URL back. Attacker-controlled: nothing
(the URL is the administrator's); limits: none.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url: str | None) -> bool:
    return bool(url) and url.startswith(POSTGRES_SCHEMES)  # type: ignore[union-attr]


def _password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def redact(url: str) -> str:
    """The URL with its password replaced by `***` (user, host, port and database kept)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an unreadable database URL)"
    if parts.password is None:
        return scrub(url, url)
    netloc = f"{parts.username or ''}:***@{host}"
    if ":" in host:
        netloc = f"{parts.username or ''}:***@[{host}]"
    if port is not None:
        netloc += f":{port}"
    return scrub(parts._replace(netloc=netloc).geturl(), url)


def where(url: str) -> str:
    """`host:port/database` of a server URL, for sentences ("cannot reach 10.0.0.5:5432/...")."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "(an unreadable database URL)"
    database = unquote(parts.path.lstrip("/")) or parts.username or "postgres"
    return f"{host}:{port}/{database}"


def scrub(text: str, url: str) -> str:
    """`text` (e.g. a driver's error message) with the URL's password, if any, masked."""
    password = _password(url)
    if password:
        text = text.replace(password, "***")
        raw = url.split("@", 1)[0].rsplit(":", 1)[-1]  # the password as written (%-encoded)
        if raw and raw != password:
            text = text.replace(raw, "***")
    return text
