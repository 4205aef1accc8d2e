"""Database URLs as people may see them: never the password.

A `postgresql://user:secret@host:port/db` URL holds a credential. Everything that prints or logs
a database URL goes through `redact` (or names the server with `where`), and error text from the
driver is passed through `scrub` in case it echoes the URL back. Attacker-controlled: nothing
(the URL is the administrator's); limits: none.
"""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url: str | None) -> bool:
    return bool(url) and url.startswith(POSTGRES_SCHEMES)  # type: ignore[union-attr]


def _password(url: str) -> str | None:
    """The password in the URL's user part, or in a `?password=` parameter (libpq takes both)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return None
    if password:
        return unquote(password)
    in_query = parse_qs(parts.query).get("password")
    return in_query[0] if in_query and in_query[0] else None


def redact(url: str) -> str:
    """The URL with its password replaced by `***` (user, host, port and database kept)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an unreadable database URL)"
    if "password" in parse_qs(parts.query):
        query = urlencode([(k, "***" if k == "password" else v)
                           for k, v in parse_qsl(parts.query)], safe="*/")
        parts = parts._replace(query=query)
    if parts.password is None:
        return scrub(parts.geturl(), url)
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
    if not password:
        return text
    try:
        as_written = urlsplit(url).password  # still %-encoded
    except ValueError:
        as_written = None
    for secret in {password, as_written or password}:
        text = text.replace(secret, "***")
    return text
