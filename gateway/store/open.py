"""Opens the state database a gateway.json names: the one place that picks the Store backend."""

from __future__ import annotations

from pathlib import Path

from gateway.datadir import DataDir, GatewayConfig
from gateway.store.base import Store, StoreError
from gateway.store.dsn import is_postgres


def database_path(data: DataDir, config: GatewayConfig | None) -> Path | None:
    """The SQLite file of this DATA_DIR, or None when the database is a server."""
    url = config.database if config is not None else None
    if url is None:
        return data.db
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite://"))
    return None


def open_store(data: DataDir, config: GatewayConfig | None) -> Store:
    """The Store for `config.database` (SQLite in DATA_DIR when unset). StoreError, one
    sentence, when the setting is not understood or the database cannot be reached (naming
    the server, never the password: gateway.store.dsn)."""
    path = database_path(data, config)
    if path is not None:
        from gateway.store.sqlite import SqliteStore

        return SqliteStore(path)
    url = config.database if config is not None else ""
    if is_postgres(url):
        from gateway.store.postgres import PostgresStore

        return PostgresStore(url or "")
    raise StoreError(f"{data.config_file}: \"database\" must be postgresql://... or "
                     "sqlite:///ABSOLUTE/PATH (or left out for DATA_DIR/state.db).")
