"""Picks the node bus for gateway.json's "database": the same place the Store comes from."""

from __future__ import annotations

from gateway.cluster.bus import NodeBus
from gateway.datadir import DataDir, GatewayConfig
from gateway.store.open import database_path


def open_bus(data: DataDir, config: GatewayConfig | None, node: str) -> NodeBus:
    path = database_path(data, config)
    if path is not None:
        from gateway.cluster.sqlite_bus import SqliteBus

        return SqliteBus(path, node)
    from gateway.cluster.postgres_bus import PostgresBus

    assert config is not None and config.database is not None
    return PostgresBus(config.database, node)
