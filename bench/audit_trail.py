"""Appends per second to the audit trail in PostgreSQL, with 1 and 2 writer processes.

    .venv/bin/python -m bench.audit_trail [--appends 500] [--writers 1 2] [--runs 2] [--fsync]

Starts its own PostgreSQL (tests/fixtures/postgres.py: initdb in a temporary directory, a free
loopback port; `--fsync` restarts it with fsync=on, the fixture runs with fsync=off), makes a
fresh database and trail per run, starts the writers as separate processes (each its own
PgTrail and connection, like gateway nodes), releases them together, times them until the last
one is done, then runs `verify` on the whole trail. Prints one line per run; stops the server.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit.events import AuditEvent
from gateway.audit.open import create_trail
from gateway.audit.pgread import verify_trail
from gateway.audit.pgtrail import PgTrail
from tests.fixtures.postgres import (
    PostgresServer,
    _as_server_user,
    pg_bin,
    start_postgres,
    stop_postgres,
)


def _writer(dsn: str, pem: bytes, node: str, count: int, start: Any) -> None:
    from gateway.audit.keys import load_signing_key_bytes

    trail = PgTrail(dsn, load_signing_key_bytes(pem), node)
    start.wait()
    for i in range(count):
        trail.append(AuditEvent(kind="login", outcome="ok", actor=f"{node}-{i}", school="north",
                                source="192.0.2.7", details={"method": "token", "attempt": i}))
    trail.close()


def one_run(server: PostgresServer, writers: int, appends: int) -> tuple[float, bool, int]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    dsn = server.create_database()
    create_trail(dsn, key, "init")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(dsn, pem, f"node-{n}", appends, start))
             for n in range(writers)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # every writer connected and waiting
    began = time.perf_counter()
    start.set()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - began
    result = verify_trail(dsn, key.public_key())
    return writers * appends / elapsed, result.ok, result.records


def restart_with_fsync(server: PostgresServer) -> None:
    options = (f"-c listen_addresses=127.0.0.1 -c port={server.port} "
               f"-c unix_socket_directories={server.root / 'run'} -c fsync=on")
    for action in ("stop", "start"):
        subprocess.run(_as_server_user([pg_bin("pg_ctl"), "-D", str(server.root / "data"), "-o",
                                        options, "-l", str(server.root / "run" / "log"), "-m",
                                        "fast", "-w", action]), check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=500, help="per writer")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--fsync", action="store_true", help="run the server with fsync=on")
    args = parser.parse_args()
    server = start_postgres()
    try:
        if args.fsync:
            restart_with_fsync(server)
        print(f"load average {os.getloadavg()[0]:.1f}, fsync={'on' if args.fsync else 'off'}")
        for writers in args.writers:
            for run in range(args.runs):
                rate, ok, records = one_run(server, writers, args.appends)
                print(f"writers={writers} run={run + 1}: {rate:.0f} appends/s "
                      f"(verify {'ok' if ok else 'BROKEN'}, {records} records)", flush=True)
    finally:
        stop_postgres(server)


if __name__ == "__main__":
    main()
