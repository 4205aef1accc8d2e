"""Helpers for the audit-trail-in-PostgreSQL tests: stop and start a test server in place (same
port, same data), and a gateway node started on a DATA_DIR whose gateway.json names PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.gateway import STAFFROOM, Gateway, stop_gateway, wait_for_tls
from tests.fixtures.postgres import PostgresServer, _as_server_user, pg_bin


def pg_ctl(server: PostgresServer, action: str) -> None:
    """`pg_ctl stop|start` on a server from tests.fixtures.postgres.start_postgres."""
    root = server.root
    options = (f"-c listen_addresses=127.0.0.1 -c port={server.port} "
               f"-c unix_socket_directories={root / 'run'} -c fsync=off")
    subprocess.run(_as_server_user([pg_bin("pg_ctl"), "-D", str(root / "data"), "-o", options,
                                    "-l", str(root / "run" / "log"), "-m", "fast", "-w", "-t",
                                    "60", action]), check=True, capture_output=True, timeout=90)


def postgres_store_built() -> bool:
    """Whether this tree has the PostgreSQL Store (issue 12a). Until it has, a node keeps its
    state in DATA_DIR/state.db and only the audit trail is in PostgreSQL (see LAUNCH)."""
    from gateway.datadir import DataDir, GatewayConfig
    from gateway.store.base import StoreError
    from gateway.store.open import open_store

    config = GatewayConfig(hostnames=("x",), listen="127.0.0.1:1", public_url="https://x",
                           database="postgresql://nobody:x@127.0.0.1:1/none")
    try:
        open_store(DataDir(Path("/nonexistent")), config).close()
    except StoreError as e:
        return "built without" not in str(e)
    except Exception:
        return True
    return True


# `staffroom gateway` with the state in DATA_DIR/state.db (only used while the tree has no
# PostgreSQL Store; everything else — the audit trail above all — is the real code).
LAUNCH = (
    "import sys\n"
    "import gateway.store.open as o\n"
    "from gateway.store.sqlite import SqliteStore\n"
    "o.open_store = lambda data, config: SqliteStore(data.db)\n"
    "from gateway.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def start_node(gw: Gateway, node: str) -> None:
    """`staffroom gateway --data DIR --node NAME`, waiting for its TLS port."""
    gw.log = gw.data.parent / f"gateway-{node}.log"
    command = [STAFFROOM] if postgres_store_built() else [sys.executable, "-c", LAUNCH]
    with gw.log.open("wb") as log:
        gw.process = subprocess.Popen([*command, "gateway", "--data", str(gw.data),
                                       "--node", node], stdout=log, stderr=log,
                                      env=dict(os.environ), start_new_session=True)
    try:
        wait_for_tls(gw.port, gw.ca)
    except TimeoutError:
        stop_gateway(gw)
        raise AssertionError(gw.log.read_text()) from None
