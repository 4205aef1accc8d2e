"""Where the audit trail lives: the one place that picks the file log or the PostgreSQL trail.

gateway.json's "database" decides, as for the state (gateway/store/open.py): "postgresql://..."
puts every node's records into one trail in that database (gateway/audit/pgtrail.py); anything
else keeps the hash-chained file in DATA_DIR/audit exactly as on one machine.

Attacker-controlled here: nothing (gateway.json is the operator's file); the search filters are
passed through to the reader, which binds them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit import query
from gateway.audit.events import AuditRecord
from gateway.audit.keys import load_public_key, load_signing_key
from gateway.audit.log import AuditLog, AuditLogError
from gateway.audit.verify import VerifyResult, verify
from gateway.datadir import DataDir, GatewayConfig


def trail_dsn(config: GatewayConfig | None) -> str | None:
    """The PostgreSQL DSN when the audit trail lives in a database server, else None."""
    url = config.database if config is not None else None
    if url and url.startswith(("postgresql://", "postgres://")):
        return url
    return None


def open_audit(data: DataDir, config: GatewayConfig | None, node: str) -> Any:
    """The gateway's audit log (AuditLog or PgTrail); AuditLogError, one sentence, when it
    cannot be opened."""
    key = load_signing_key(data.audit_key)
    dsn = trail_dsn(config)
    if dsn is None:
        return AuditLog(data.audit_dir, key)
    from gateway.audit.pgtrail import PgTrail

    return PgTrail(dsn, key, node)


def create_trail(dsn: str, signing_key: ec.EllipticCurvePrivateKey,
                 node: str | None = None) -> str:
    """Make the board's one trail in PostgreSQL (tables, record 0, signed head); returns its
    log id. AuditLogError when the database holds one already or cannot be reached."""
    import psycopg

    from gateway.audit import pgschema

    try:
        return pgschema.create_trail(dsn, signing_key, node or _host())
    except pgschema.TrailExists as exc:
        raise AuditLogError(str(exc)) from None
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "no answer"
        raise AuditLogError(f"The audit trail cannot be created in PostgreSQL ({reason}).") \
            from None


def create_audit(data: DataDir, database: str | None,
                 signing_key: ec.EllipticCurvePrivateKey) -> Any:
    """`staffroom init`: a new file log in DATA_DIR/audit, or the new trail in PostgreSQL
    (opened for init's own records) when `database` names one."""
    if database is None or not database.startswith(("postgresql://", "postgres://")):
        return AuditLog.create(data.audit_dir, signing_key)
    node = _host()
    create_trail(database, signing_key, node)
    from gateway.audit.pgtrail import PgTrail

    return PgTrail(database, signing_key, node)


def verify_audit(root: Path) -> VerifyResult:
    """`staffroom audit verify`: the whole trail in PostgreSQL when gateway.json names one,
    else the file log in DATA_DIR/audit."""
    data = DataDir(root)
    try:
        key = load_public_key(data.audit_key)
    except FileNotFoundError:
        return VerifyResult(False, 0, None, f"{root} has no audit signing key: is it a "
                            "Staffroom data directory?", None)
    config = data.read_config() if data.config_file.exists() else None
    dsn = trail_dsn(config)
    if dsn is None:
        return verify(data.audit_dir, key)
    from gateway.audit.pgread import verify_trail

    return verify_trail(dsn, key)


def iter_audit_records(audit: Any, data: DataDir, **filters: Any) -> Iterator[AuditRecord]:
    """Search and export: the open trail's records (PostgreSQL), else the file in DATA_DIR."""
    records = getattr(audit, "records", None)
    if records is not None:
        return records(**filters)  # type: ignore[no-any-return]
    return query.iter_records(data.audit_dir, **filters)


def record_node(record: AuditRecord) -> str | None:
    """The node that wrote a record (None for the file log of a single gateway)."""
    node = record.details.get("node")
    return node if isinstance(node, str) else None


def _host() -> str:
    return socket.gethostname().split(".")[0][:63] or "init"
